/*
 * parent_pickup.c: the offline directory, where sendmail(8) leaves
 * messages while sqmaild is down.  The parent (root: it can read every
 * user's file) checks each file and hands it to control, which submits
 * it to queue with the file owner's uid (IMSG_PICKUP_RCPT, IMSG_PICKUP).
 */
#ifndef SQ_PARENT_PICKUP_H
#define SQ_PARENT_PICKUP_H

/*
 * Create the directories, then scan at once and every PICKUP_INTERVAL
 * seconds.  Call after the channels exist and their handlers are set:
 * it takes over control's handler for IMSG_PICKUP and passes it the
 * rest.
 */
void	parent_pickup_start(void);

#endif
