/*
 * lib/mailaddr.c: one row per address, then the is_email corpus in
 * ../shared/testdata/isemail/tests.xml (run from the repository root).
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailaddr.h"
#include "sqmail.h"
#include "tap.h"

#define ISEMAIL_XML	"../shared/testdata/isemail/tests.xml"

struct addr_case {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 ret;
	const char	*user;
	const char	*domain;
};

static const struct addr_case addr_cases[] = {
	{ "plain_address", "user@example.org", 0, 0, "user", "example.org" },
	{ "domain_lowercased_local_kept", "User@EXAMPLE.Org", 0, 0, "User",
	    "example.org" },
	{ "dotted_local_part", "a.b.c@d.e", 0, 0, "a.b.c", "d.e" },
	{ "atext_specials", "!#$%&'*+-/=?^_`{|}~@x.org", 0, 0,
	    "!#$%&'*+-/=?^_`{|}~", "x.org" },
	{ "single_label_domain", "root@localhost", 0, 0, "root", "localhost" },
	{ "numeric_labels", "a@1.2.3.4", 0, 0, "a", "1.2.3.4" },
	{ "hyphen_inside_label", "a@c--n.com", 0, 0, "a", "c--n.com" },
	{ "quoted_needing_quotes_kept", "\"a b\"@x.org", 0, 0, "\"a b\"",
	    "x.org" },
	{ "quoted_not_needed_unquoted", "\"ab\"@x.org", 0, 0, "ab", "x.org" },
	{ "quoted_pair_unneeded_dropped", "\"\\a\"@x.org", 0, 0, "a",
	    "x.org" },
	{ "quoted_pair_space_minimal", "\"a\\ b\"@x.org", 0, 0, "\"a b\"",
	    "x.org" },
	{ "quoted_escaped_quote_kept", "\"a\\\"b\"@x.org", 0, 0,
	    "\"a\\\"b\"", "x.org" },
	{ "quoted_backslash_kept", "\"a\\\\b\"@x.org", 0, 0, "\"a\\\\b\"",
	    "x.org" },
	{ "quoted_empty", "\"\"@x.org", 0, 0, "\"\"", "x.org" },
	{ "quoted_double_dot_kept", "\"a..b\"@x.org", 0, 0, "\"a..b\"",
	    "x.org" },
	{ "quoted_at_sign", "\"a@b\"@x.org", 0, 0, "\"a@b\"", "x.org" },
	{ "ipv4_literal", "u@[192.0.2.1]", 0, 0, "u", "[192.0.2.1]" },
	{ "ipv6_literal_loopback", "u@[IPv6:::1]", 0, 0, "u", "[IPv6:::1]" },
	{ "ipv6_tag_and_hex_normalised", "u@[ipv6:2001:DB8::1]", 0, 0, "u",
	    "[IPv6:2001:db8::1]" },
	{ "ipv6_full", "u@[IPv6:1:2:3:4:5:6:7:8]", 0, 0, "u",
	    "[IPv6:1:2:3:4:5:6:7:8]" },
	{ "ipv6_v4_mapped", "u@[IPv6:::ffff:192.0.2.1]", 0, 0, "u",
	    "[IPv6:::ffff:192.0.2.1]" },
	{ "ipv6_v4_full", "u@[IPv6:1:2:3:4:5:6:192.0.2.1]", 0, 0, "u",
	    "[IPv6:1:2:3:4:5:6:192.0.2.1]" },
	{ "ipv6_trailing_dcolon", "u@[IPv6:1:2::]", 0, 0, "u",
	    "[IPv6:1:2::]" },

	{ "empty", "", 0, -1, "", "" },
	{ "at_only", "@", 0, -1, "", "" },
	{ "no_domain_part", "user", 0, -1, "", "" },
	{ "empty_domain", "user@", 0, -1, "", "" },
	{ "empty_local", "@x.org", 0, -1, "", "" },
	{ "leading_dot", ".a@x.org", 0, -1, "", "" },
	{ "trailing_dot_local", "a.@x.org", 0, -1, "", "" },
	{ "double_dot_local", "a..b@x.org", 0, -1, "", "" },
	{ "space_in_local", "a b@x.org", 0, -1, "", "" },
	{ "two_at_signs", "a@b@x.org", 0, -1, "", "" },
	{ "label_leading_hyphen", "a@-x.org", 0, -1, "", "" },
	{ "label_trailing_hyphen", "a@x-.org", 0, -1, "", "" },
	{ "domain_trailing_hyphen", "a@x.org-", 0, -1, "", "" },
	{ "empty_label", "a@x..org", 0, -1, "", "" },
	{ "domain_leading_dot", "a@.x.org", 0, -1, "", "" },
	{ "domain_trailing_dot", "a@x.org.", 0, -1, "", "" },
	{ "underscore_in_domain", "a@x_y.org", 0, -1, "", "" },
	{ "slash_in_domain", "a@x/y.org", 0, -1, "", "" },
	{ "ipv4_three_parts", "a@[1.2.3]", 0, -1, "", "" },
	{ "ipv4_part_over_255", "a@[1.2.3.256]", 0, -1, "", "" },
	{ "ipv4_four_digits", "a@[1.2.3.0001]", 0, -1, "", "" },
	{ "literal_unclosed", "a@[1.2.3.4", 0, -1, "", "" },
	{ "literal_text_after", "a@[1.2.3.4]x", 0, -1, "", "" },
	{ "literal_unknown_tag", "a@[foo:bar]", 0, -1, "", "" },
	{ "literal_empty", "a@[]", 0, -1, "", "" },
	{ "ipv6_two_dcolons", "a@[IPv6:1::2::3]", 0, -1, "", "" },
	{ "ipv6_too_many_groups", "a@[IPv6:1:2:3:4:5:6:7:8:9]", 0, -1, "",
	    "" },
	{ "ipv6_dcolon_with_seven", "a@[IPv6:1:2:3:4:5:6::7]", 0, -1, "",
	    "" },
	{ "ipv6_too_few_groups", "a@[IPv6:1:2:3:4:5:6:7]", 0, -1, "", "" },
	{ "ipv6_group_five_hex", "a@[IPv6:12345::1]", 0, -1, "", "" },
	{ "ipv6_bad_hex", "a@[IPv6:1::g]", 0, -1, "", "" },
	{ "ipv6_single_colon_start", "a@[IPv6::1:2]", 0, -1, "", "" },
	{ "ipv6_trailing_single_colon", "a@[IPv6:1::2:]", 0, -1, "", "" },
	{ "ipv6_v4_not_last", "a@[IPv6:1.2.3.4::1]", 0, -1, "", "" },
	{ "ipv6_empty", "a@[IPv6:]", 0, -1, "", "" },
	{ "quote_unclosed", "\"a@x.org", 0, -1, "", "" },
	{ "quote_then_atext", "\"a\"b@x.org", 0, -1, "", "" },
	{ "quote_inside_atom", "a\"b\"@x.org", 0, -1, "", "" },
	{ "quoted_dot_quoted", "\"a\".\"b\"@x.org", 0, -1, "", "" },
	{ "quoted_trailing_backslash", "\"a\\", 0, -1, "", "" },
	{ "quoted_control_byte", "\"a\x01\"@x.org", 0, -1, "", "" },
	{ "quoted_pair_control", "\"a\\\x07\"@x.org", 0, -1, "", "" },
	{ "quoted_tab", "\"a\tb\"@x.org", 0, -1, "", "" },
	{ "control_in_local", "a\x01" "b@x.org", 0, -1, "", "" },
	{ "del_in_local", "a\x7f@x.org", 0, -1, "", "" },
	{ "eight_bit_local", "\xc3\xa4@x.org", 0, -1, "", "" },
	{ "eight_bit_domain", "a@\xc3\xa4.org", 0, -1, "", "" },
	{ "nul_in_local", "a\0b@x.org", 9, -1, "", "" },
	{ "nul_in_domain", "a@x\0y.org", 9, -1, "", "" },
	{ "comment", "(c)a@x.org", 0, -1, "", "" },
	{ "space_before_at", "a @x.org", 0, -1, "", "" },
	{ "space_after_at", "a@ x.org", 0, -1, "", "" },
	{ "crlf_after", "a@x.org\r\n", 0, -1, "", "" },
	{ "angle_brackets_not_stripped", "<a@x.org>", 0, -1, "", "" },
};

static void
test_addr_cases(void)
{
	struct mailaddr	 a;
	size_t		 i, len;
	int		 r;
	char		 name[128];

	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];

		len = c->len ? c->len : strlen(c->in);
		r = mailaddr_parse(c->in, len, &a);
		(void)snprintf(name, sizeof(name), "%s: result", c->name);
		is_int(r, c->ret, name);
		(void)snprintf(name, sizeof(name), "%s: user", c->name);
		is_str(a.user, c->user, name);
		(void)snprintf(name, sizeof(name), "%s: domain", c->name);
		is_str(a.domain, c->domain, name);
	}
}

/* Build "<n times ch>" into buf. */
static void
fill(char *buf, char ch, size_t n)
{
	memset(buf, ch, n);
	buf[n] = '\0';
}

static void
test_limits(void)
{
	struct mailaddr	 a;
	char		 s[1024], lab[64];

	fill(s, 'a', SQ_LOCALPART_MAX);
	strlcat(s, "@x.org", sizeof(s));
	is_int(mailaddr_parse(s, strlen(s), &a), 0,
	    "local_part_at_limit_accepted");
	fill(s, 'a', SQ_LOCALPART_MAX + 1);
	strlcat(s, "@x.org", sizeof(s));
	is_int(mailaddr_parse(s, strlen(s), &a), -1,
	    "local_part_over_limit_rejected");

	/* Quoted: the stored form, quotes included, must fit. */
	s[0] = '"';
	fill(s + 1, 'a', SQ_LOCALPART_MAX - 3);
	s[SQ_LOCALPART_MAX - 2] = ' ';
	s[SQ_LOCALPART_MAX - 1] = '"';
	s[SQ_LOCALPART_MAX] = '\0';
	strlcat(s, "@x.org", sizeof(s));
	is_int(mailaddr_parse(s, strlen(s), &a), 0,
	    "quoted_local_part_at_limit_accepted");
	is_int(strlen(a.user), SQ_LOCALPART_MAX, "quoted_stored_length");
	s[0] = '"';
	fill(s + 1, 'a', SQ_LOCALPART_MAX - 2);
	s[SQ_LOCALPART_MAX - 1] = ' ';
	s[SQ_LOCALPART_MAX] = '"';
	s[SQ_LOCALPART_MAX + 1] = '\0';
	strlcat(s, "@x.org", sizeof(s));
	is_int(mailaddr_parse(s, strlen(s), &a), -1,
	    "quoted_local_part_over_limit_rejected");

	fill(lab, 'b', 63);
	snprintf(s, sizeof(s), "a@%s.org", lab);
	is_int(mailaddr_parse(s, strlen(s), &a), 0, "label_63_accepted");
	snprintf(s, sizeof(s), "a@%sb.org", lab);
	is_int(mailaddr_parse(s, strlen(s), &a), -1, "label_64_rejected");

	/* 4 labels of 63 make 255 octets; "bb." and 3 + 1 labels, 256. */
	snprintf(s, sizeof(s), "a@%s.%s.%s.%s", lab, lab, lab, lab);
	is_int(mailaddr_parse(s, strlen(s), &a), 0, "domain_255_accepted");
	is_int(strlen(a.domain), 255, "domain_255_stored");
	snprintf(s, sizeof(s), "a@bb.%s.%s.%s.%.61s", lab, lab, lab, lab);
	is_int(mailaddr_parse(s, strlen(s), &a), -1, "domain_256_rejected");

	/* The length given is honoured: no read past it. */
	is_int(mailaddr_parse("a@x.orgJUNK", 7, &a), 0,
	    "length_bounds_the_input");
	is_str(a.domain, "x.org", "length_bounds_the_domain");
}

static void
test_domain_and_text(void)
{
	struct mailaddr	 a;
	char		 buf[SQ_ADDR_MAX], small[4], d[SQ_DOMAIN_MAX + 1];

	is_int(mailaddr_parse_domain("Mail.Example.ORG", 16, d, sizeof(d)), 0,
	    "parse_domain_ok");
	is_str(d, "mail.example.org", "parse_domain_lowercases");
	is_int(mailaddr_parse_domain("[10.0.0.1]", 10, d, sizeof(d)), 0,
	    "parse_domain_literal");
	is_int(mailaddr_parse_domain("x.org", 5, d, 5), -1,
	    "parse_domain_small_buffer");
	is_int(mailaddr_parse_domain("x..org", 6, d, sizeof(d)), -1,
	    "parse_domain_bad");
	is_str(d, "", "parse_domain_bad_clears");

	is_int(mailaddr_is_dotstring("a.b", 3), 1, "dotstring_yes");
	is_int(mailaddr_is_dotstring("a..b", 4), 0, "dotstring_double_dot");
	is_int(mailaddr_is_dotstring("", 0), 0, "dotstring_empty");

	(void)mailaddr_parse("\"a b\"@X.org", 11, &a);
	is_int(mailaddr_to_text(&a, buf, sizeof(buf)), 0, "to_text_ok");
	is_str(buf, "\"a b\"@x.org", "to_text_quoted");
	is_int(mailaddr_parse(buf, strlen(buf), &a), 0, "to_text_round_trip");
	is_int(mailaddr_to_text(&a, small, sizeof(small)), -1,
	    "to_text_truncation_fails");
	is_str(small, "", "to_text_truncation_empties");
	memset(&a, 0, sizeof(a));
	is_int(mailaddr_is_null(&a), 1, "null_path_is_null");
	is_int(mailaddr_to_text(&a, buf, sizeof(buf)), 0, "to_text_null");
	is_str(buf, "", "to_text_null_empty");
	strlcpy(a.user, "postmaster", sizeof(a.user));
	is_int(mailaddr_to_text(&a, buf, sizeof(buf)), 0, "to_text_no_domain");
	is_str(buf, "postmaster", "to_text_user_only");
	is_int(mailaddr_is_null(&a), 0, "user_only_not_null");
}

/*
 * The is_email corpus.  Expected verdicts: RFC 5321 envelope syntax.
 * Accepted: categories ISEMAIL_VALID_CATEGORY, ISEMAIL_DNSWARN (DNS is
 * not the parser's business) and ISEMAIL_RFC5321 (quoted strings, address
 * literals, numeric or single-label domains: valid in an envelope).
 * Refused: ISEMAIL_ERR, ISEMAIL_CFWS and ISEMAIL_DEPREC (comments, folding
 * white space, obsolete forms: RFC 5322 header syntax, never envelope
 * syntax) and ISEMAIL_RFC5322 (domain literals that are not address
 * literals, labels over 63 octets, domains over 255).  Two deliberate
 * exceptions, both RFC5322 diagnoses that we accept: local parts of 65 to
 * SQ_LOCALPART_MAX octets (ISEMAIL_RFC5322_LOCAL_TOOLONG) and addresses
 * over 254 octets whose parts fit our limits (ISEMAIL_RFC5322_TOOLONG):
 * RFC 5321 4.5.3.1 asks servers to accept objects larger than its
 * minimum maxima where they can.  Every case is checked.
 */
static size_t
xml_decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t		 i, n = 0;
	unsigned long	 cp;
	char		*end;

	for (i = 0; i < len && n + 4 < outlen; i++) {
		if (s[i] != '&') {
			out[n++] = s[i];
			continue;
		}
		if (strncmp(s + i, "&amp;", 5) == 0) {
			out[n++] = '&';
			i += 4;
		} else if (strncmp(s + i, "&lt;", 4) == 0) {
			out[n++] = '<';
			i += 3;
		} else if (strncmp(s + i, "&gt;", 4) == 0) {
			out[n++] = '>';
			i += 3;
		} else if (strncmp(s + i, "&quot;", 6) == 0) {
			out[n++] = '"';
			i += 5;
		} else if (strncmp(s + i, "&apos;", 6) == 0) {
			out[n++] = '\'';
			i += 5;
		} else if (strncmp(s + i, "&#x", 3) == 0) {
			cp = strtoul(s + i + 3, &end, 16);
			if (*end != ';')
				return (size_t)-1;
			i = end - s;
			if (cp >= 0x2400 && cp < 0x2420)
				out[n++] = (char)(cp - 0x2400);	/* a control */
			else if (cp < 0x80)
				out[n++] = (char)cp;
			else
				out[n++] = (char)0xff;	/* any non-ASCII */
		} else
			return (size_t)-1;
	}
	return n;
}

/* The text of <tag>...</tag> inside [p, end), or NULL; <tag/> is "". */
static const char *
xml_elem(const char *p, const char *end, const char *tag, size_t *len)
{
	char		 open[32], empty[32], close[32];
	const char	*a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(empty, sizeof(empty), "<%s/>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if ((a = memmem(p, end - p, empty, strlen(empty))) != NULL) {
		*len = 0;
		return a;
	}
	if ((a = memmem(p, end - p, open, strlen(open))) == NULL)
		return NULL;
	a += strlen(open);
	if ((b = memmem(a, end - a, close, strlen(close))) == NULL)
		return NULL;
	*len = b - a;
	return a;
}

static void
test_isemail(void)
{
	FILE		*f;
	char		*xml, addr[1024], name[160], cat[64], diag[64];
	const char	*p, *end, *t, *id;
	size_t		 len, n, alen, clen, dlen, ncases = 0;
	long		 size;
	struct mailaddr	 a;
	int		 expect, r;

	if ((f = fopen(ISEMAIL_XML, "r")) == NULL) {
		ok(0, "isemail: " ISEMAIL_XML " readable (run from the "
		    "repository root with ../shared beside it)");
		return;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	if ((xml = malloc(size + 1)) == NULL ||
	    fread(xml, 1, size, f) != (size_t)size) {
		ok(0, "isemail: read tests.xml");
		fclose(f);
		free(xml);
		return;
	}
	fclose(f);
	xml[size] = '\0';
	end = xml + size;

	for (p = xml; (p = strstr(p, "<test id=\"")) != NULL; p = end) {
		id = p + 10;
		if ((end = strstr(p, "</test>")) == NULL)
			break;
		t = xml_elem(p, end, "address", &alen);
		if (t == NULL || (n = xml_decode(t, alen, addr,
		    sizeof(addr))) == (size_t)-1) {
			ok(0, "isemail: parse a test element");
			continue;
		}
		t = xml_elem(p, end, "category", &clen);
		if (t == NULL || clen >= sizeof(cat)) {
			ok(0, "isemail: category");
			continue;
		}
		memcpy(cat, t, clen);
		cat[clen] = '\0';
		t = xml_elem(p, end, "diagnosis", &dlen);
		if (t == NULL || dlen >= sizeof(diag)) {
			ok(0, "isemail: diagnosis");
			continue;
		}
		memcpy(diag, t, dlen);
		diag[dlen] = '\0';

		expect = strcmp(cat, "ISEMAIL_VALID_CATEGORY") == 0 ||
		    strcmp(cat, "ISEMAIL_DNSWARN") == 0 ||
		    strcmp(cat, "ISEMAIL_RFC5321") == 0 ||
		    strcmp(diag, "ISEMAIL_RFC5322_LOCAL_TOOLONG") == 0 ||
		    strcmp(diag, "ISEMAIL_RFC5322_TOOLONG") == 0;
		r = mailaddr_parse(addr, n, &a);
		len = strcspn(id, "\"");
		snprintf(name, sizeof(name), "isemail %.*s %s (%s) %s",
		    (int)len, id, expect ? "accepted" : "refused", diag + 8,
		    cat + 8);
		ok((r == 0) == expect, name);
		ncases++;
	}
	ok(ncases == 164, "isemail: all 164 cases checked");
	free(xml);
}

int
main(void)
{
	test_addr_cases();
	test_limits();
	test_domain_and_text();
	test_isemail();
	return done_testing();
}
