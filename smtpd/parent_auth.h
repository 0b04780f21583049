/*
 * parent_auth.c: SMTP AUTH against system users, in the parent (the only
 * process that may read /etc/shadow).  lka sends IMSG_AUTH_SYSTEM.
 */
#ifndef SQ_PARENT_AUTH_H
#define SQ_PARENT_AUTH_H

struct mproc;
struct imsg;

void	parent_auth_imsg(struct mproc *, struct imsg *);
void	parent_auth_shutdown(void);	/* kill the checks under way */

#endif
