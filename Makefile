# sqmail -- see README.md.  `make`, `make run`, `make check`, `make install`.

PREFIX ?=	/usr/local
DESTDIR ?=
SBINDIR ?=	$(PREFIX)/sbin
MANDIR ?=	$(PREFIX)/share/man
SYSCONFDIR ?=	/etc/sqmail
# Where programs look for sendmail, whatever PREFIX is (sendmail(8)).
SENDMAIL ?=	/usr/sbin/sendmail

CC ?=		cc
YACC ?=		byacc
PKGS =		libbsd-overlay libevent libtls
CPPFLAGS +=	-Ilib -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS))
CFLAGS ?=	-O2 -g
CFLAGS +=	-Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
		-Wmissing-prototypes -Wstrict-prototypes -fstack-protector-strong \
		-D_FORTIFY_SOURCE=2 -fPIE -MMD -MP
LDFLAGS +=	-pie -Wl,-z,relro,-z,now
LDLIBS +=	$(shell pkg-config --libs $(PKGS)) -lcdb -lcares -lpthread -lcrypt -lpam -lldap

# One archive per directory; main() lives only in the program files.
PROGMAINS =	smtpd/sqmaild.c control/sqmailctl.c
LIB_SRCS =	$(filter-out lib/parse.c,$(wildcard lib/*.c)) lib/parse.c
DIRS =		smtpd lka queue mda mta control
DIR_SRCS =	$(filter-out $(PROGMAINS),$(foreach d,$(DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS =	$(LIB_SRCS:.c=.o)
DIR_OBJS =	$(DIR_SRCS:.c=.o)
ARCHIVES =	$(foreach d,$(DIRS),$(d)/lib$(d).a) lib/libsq.a

UNIT_SRCS =	$(wildcard regress/unit/*.c)
UNIT_TESTS =	$(UNIT_SRCS:.c=.t)
FUZZ_SRCS =	$(wildcard regress/fuzz/fuzz_*.c)
FUZZ_BINS =	$(FUZZ_SRCS:.c=)
FUZZ_SECONDS ?=	60

PROGS =		sqmaild sqmailctl
MANPAGES =	$(wildcard man/*.[1-9])

all: $(PROGS)

lib/parse.c: lib/parse.y
	$(YACC) -o $@ lib/parse.y

lib/libsq.a: $(LIB_OBJS)
	$(AR) rcs $@ $^
define dir_archive
$(1)/lib$(1).a: $(filter $(1)/%,$(DIR_OBJS))
	$$(AR) rcs $$@ $$(filter $(1)/%,$(DIR_OBJS))
endef
$(foreach d,$(DIRS),$(eval $(call dir_archive,$(d))))

LINKARCHIVES =	-Wl,--start-group $(ARCHIVES) -Wl,--end-group

sqmaild: smtpd/sqmaild.o $(ARCHIVES)
	$(CC) $(LDFLAGS) -o $@ smtpd/sqmaild.o $(LINKARCHIVES) $(LDLIBS)

sqmailctl: control/sqmailctl.o $(ARCHIVES)
	$(CC) $(LDFLAGS) -o $@ control/sqmailctl.o $(LINKARCHIVES) $(LDLIBS)

regress/unit/%.t: regress/unit/%.o $(ARCHIVES)
	$(CC) $(LDFLAGS) -o $@ $< $(LINKARCHIVES) $(LDLIBS)

# Dependencies: apt-get when root, a list of what is missing otherwise.
deps:
	@sh scripts/deps.sh build

test-deps:
	@sh scripts/deps.sh test

# The built-in configuration: SMTP on 127.0.0.1:2525, everything under ./run.
# It needs no root; started by root it runs as nobody (root gets no mail).
run: deps all
	@mkdir -p run
	@if [ "$$(id -u)" -eq 0 ]; then \
		chown -R nobody:nogroup run; \
		echo "make run: running sqmaild as nobody (root receives no mail)"; \
		exec setpriv --reuid=nobody --regid=nogroup --clear-groups \
		    ./sqmaild -d -E; \
	else \
		exec ./sqmaild -d -E; \
	fi

manlint:
	mandoc -Tlint -Wwarning $(MANPAGES)

check: deps test-deps all $(UNIT_TESTS) manlint fuzz-seeds
	prove --timer --exec '' $(addprefix ./,$(UNIT_TESTS) $(sort $(wildcard regress/e2e/*.t)))

# libFuzzer targets, built with clang, ASan and UBSan; each runs FUZZ_SECONDS.
FUZZ_CC =	clang
FUZZ_CFLAGS =	-g -O1 -fsanitize=fuzzer-no-link,address,undefined -MMD -MP \
		-Wno-unused-parameter
FUZZ_OBJS =	$(patsubst %.c,regress/fuzz/obj/%.o,$(LIB_SRCS) $(DIR_SRCS))

regress/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

regress/fuzz/obj/libfuzzsq.a: $(FUZZ_OBJS)
	$(AR) rcs $@ $^

regress/fuzz/fuzz_%: regress/fuzz/fuzz_%.c regress/fuzz/obj/libfuzzsq.a
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	    regress/fuzz/obj/libfuzzsq.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# Replay each target's seeds: the fuzz targets build and pass their corpus.
fuzz-seeds: fuzz-build
	@for b in $(FUZZ_BINS); do \
		n=$$(basename $$b); \
		test -d regress/fuzz/seeds/$$n || continue; \
		$$b -runs=0 regress/fuzz/seeds/$$n > regress/fuzz/obj/$$n.seeds.log 2>&1 || \
		    { tail -n 30 regress/fuzz/obj/$$n.seeds.log; exit 1; }; \
	done; echo "fuzz seeds replayed: $(notdir $(FUZZ_BINS))"

fuzz: fuzz-build
	@mkdir -p regress/fuzz/corpus
	@for b in $(FUZZ_BINS); do \
		n=$$(basename $$b); mkdir -p regress/fuzz/corpus/$$n; \
		echo "fuzzing $$n for $(FUZZ_SECONDS)s"; \
		if ! $$b -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		    -timeout=10 regress/fuzz/corpus/$$n \
		    $$(test -d regress/fuzz/seeds/$$n && \
		    echo regress/fuzz/seeds/$$n) \
		    > regress/fuzz/corpus/$$n.log 2>&1; then \
			tail -n 40 regress/fuzz/corpus/$$n.log; exit 1; \
		fi; \
		grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+.*DONE)' \
		    regress/fuzz/corpus/$$n.log; \
	done

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)
	@# Another MTA's sendmail is kept beside ours, never overwritten.
	install -d $(DESTDIR)$(dir $(SENDMAIL))
	@if [ -e $(DESTDIR)$(SENDMAIL) ] && \
	    ! readlink $(DESTDIR)$(SENDMAIL) | grep -q 'sqmailctl$$'; then \
		echo "moving $(DESTDIR)$(SENDMAIL) to $(DESTDIR)$(SENDMAIL).pre-sqmail"; \
		mv -f $(DESTDIR)$(SENDMAIL) $(DESTDIR)$(SENDMAIL).pre-sqmail; \
	fi
	install -m 755 sqmaild sqmailctl $(DESTDIR)$(SBINDIR)
	ln -sf sqmailctl $(DESTDIR)$(SBINDIR)/sendmail
	ln -sf sqmailctl $(DESTDIR)$(SBINDIR)/mailq
	ln -sf sqmailctl $(DESTDIR)$(SBINDIR)/newaliases
	ln -sf $(SBINDIR)/sqmailctl $(DESTDIR)$(SENDMAIL)
	for m in $(MANPAGES); do \
		s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
		install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s; \
	done
	install -m 644 etc/sqmail.conf $(DESTDIR)$(SYSCONFDIR)/sqmail.conf.sample
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local|$(PREFIX)|g' etc/sqmaild.service \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/sqmaild.service

clean:
	rm -f $(PROGS) lib/parse.c $(ARCHIVES) $(UNIT_TESTS) $(FUZZ_BINS)
	find . -name '*.o' -o -name '*.d' | xargs rm -f
	rm -rf regress/fuzz/obj regress/unit.log

.PHONY: all deps test-deps run manlint check fuzz fuzz-build fuzz-seeds install clean
.SECONDARY:

-include $(shell find . -name '*.d' 2>/dev/null)
