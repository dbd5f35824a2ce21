#!/usr/bin/env bash
# Regenerates the seed corpora under tests/fuzz/corpus/<target>/ (committed;
# run by hand after changing a format). The PST seeds need a built mbxmerge
# (MBXMERGE=path, default build/release/cli/mbxmerge); the zstd CLI frames
# one .mbxz seed. Seeds stay small: libFuzzer mutates them, ctest replays them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$here/corpus
MBXMERGE=${MBXMERGE:-$root/build/release/cli/mbxmerge}
mkdir -p "$corpus"/{mime,mbox,ldif,mbxz,pst_read,pst_roundtrip}

# ---- MIME messages ----
m=$corpus/mime
cat > "$m/plain.eml" <<'EOF'
Return-Path: <alice@example.org>
Received: from mx.example.org (mx.example.org [192.0.2.1])
	by mail.example.net with ESMTP id 12345; Tue, 1 Jul 2003 10:52:37 +0200
Message-ID: <1234@example.org>
From: "Alice Example" <alice@Example.ORG>
To: bob@example.net, "Carol, C." <carol@example.net>
Cc: undisclosed-recipients:;
Subject: Hello
 world, folded
Date: Tue, 1 Jul 2003 10:52:37 +0200
Status: RO
X-Status: AF

Body line one.
From here on the body.
EOF
printf 'From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.de>\r\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe?= =?UTF-8?Q?_und_=E6=97=A5?= plain\r\nDate: 1 Jan 99 00:00 EST\r\nMessage-Id: <x@y>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n' > "$m/encoded_words_crlf.eml"
cat > "$m/multipart.eml" <<'EOF'
From: a@example.org
Date: Mon, 29 Feb 2016 23:59:60 -1200 (comment)
Subject: attachments
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

text
--outer
Content-Type: application/pdf; name="=?UTF-8?B?w6Q=?=.pdf"
Content-Disposition: attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.bin
Content-Transfer-Encoding: base64

SGVsbG8gd29ybGQ=
--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename="fwd.eml"

From: b@example.org
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/html
Content-Disposition: attachment;
 filename*0*=us-ascii'en'part%20one;
 filename*1=" two.html"

<p>x</p>
--inner--
--outer--
EOF
cat > "$m/from_line_asctime.eml" <<'EOF'
From MAILER-DAEMON Tue Jul  1 08:52:37 2003
Date: Tue Jul  1 08:52:37 2003
From: MAILER-DAEMON
Subject: no address
Received: by x; Thu, 13 Feb 1969 23:32:54 -0330
X-Mbxmerge-Search-Key: 00112233445566778899aabbccddeeff

no header block after this
EOF
printf 'not a header line\nSubject: x\n\nbody' > "$m/no_headers.eml"
printf 'Subject: \xe9t\xe9 \xff\x00 =?bogus?X?abc?= =?utf-8?b?////?=\nFrom: (comment) Group: a@b, "q \\" x" <c@d>;\nDate: 31 Dec 2049 23:59:59 GMT\n\n' > "$m/latin1_junk.eml"

# ---- mbox files ----
b=$corpus/mbox
{
  printf 'From alice@example.org Tue Jul  1 08:52:37 2003\n'
  cat "$m/plain.eml"
  printf '>From quoted once\n>>From quoted twice\n\n'
  printf 'From "a b"@example.org Wed Jul  2 01:00:00 2003\nSubject: second\nStatus: R\nX-Status: D\n\nbody\nFrom inside body without blank line\n\n'
  printf 'From - Thu Jan  1 00:00:00 1970\n\n'
} > "$b/three.mbox"
printf 'junk before the first From_ line\n\nFrom x@y Mon Jan  1 00:00:00 2001\r\nSubject: crlf\r\n\r\nbody\r\n\r\nFrom x@y Mon Jan  1 00:00:00 2001\r\n' > "$b/crlf_junk.mbox"
printf 'From x@y Sat Feb 29 12:00:00 2020\nSubject: no trailing newline\n\nlast line' > "$b/no_final_newline.mbox"

# ---- LDIF ----
l=$corpus/ldif
cat > "$l/users.ldif" <<'EOF'
version: 1
# a comment
 continued comment
dn: CN=Alice Example,OU=Users,DC=example,DC=org
objectClass: top
objectClass: user
cn: Alice Example
mail: alice@example.org
proxyAddresses: SMTP:alice@example.org
description:: w6TDtsO8IGJpbmFyeQ==
legacyExchangeDN: /o=Example/ou=First Administrative Group/cn=Recipients/cn=al
 ice
cn;lang-de: Alice

dn:: Q049w7xtbGF1dCxEQz1leGFtcGxlLERDPW9yZw==
mail: u@example.org
EOF
printf 'dn: cn=crlf\r\nmail: a@b\r\nthumbnailPhoto:: /9j/4AAQSkZJRg==\r\n\r\ndn: cn=url\r\njpegPhoto:< file:///etc/passwd\r\n' > "$l/crlf_url.ldif"
printf 'dn: cn=x\nchangetype: modify\nreplace: mail\nmail: a@b\n-\n' > "$l/changetype.ldif"

# ---- mbxz record streams (the harness frames inputs without the zstd magic) ----
z=$corpus/mbxz
mbxz_record() {  # folder flags mime: 'M' varint folder u8 flags i64 i64 varint sender varint mime
  local folder=$1 flags=$2 mime=$3
  printf 'M'; printf "\\x$(printf %02x ${#folder})"; printf '%s' "$folder"
  printf "\\x$(printf %02x "$flags")"
  printf '\x00\x10\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00\x00\x00\x00'
  printf '\x05a@b.c'
  printf "\\x$(printf %02x ${#mime})"; printf '%s' "$mime"
}
{
  printf 'MBXZ\x01'
  mbxz_record "" 1 $'Subject: one\n\nbody\n'
  mbxz_record "INBOX/Sub" 65 $'Subject: two\n\nx\n'
  printf 'F\x02\x00\x00\x00\x00\x00\x00\x00'
} > "$z/two_messages.raw"
{ printf 'MBXZ\x01'; mbxz_record "Cut" 0 $'Subject: cut\n\n'; } > "$z/truncated.raw"
if command -v zstd > /dev/null; then
  { cat "$z/two_messages.raw" | zstd -q -c; cat "$z/truncated.raw" | zstd -q -c; } > "$z/two_frames.mbxz"
fi

# ---- PST files: stores our own writer made (the real Outlook files of
# ../shared/data must never be copied into the repository; `make fuzz` adds the
# small ones to its working corpus at run time) ----
p=$corpus/pst_read
if [ -x "$MBXMERGE" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/in"
  cp "$b/three.mbox" "$tmp/in/Inbox.mbox"
  mkdir -p "$tmp/in/Inbox"
  { printf 'From a@b Mon Jan  1 00:00:00 2001\n'; cat "$m/multipart.eml"; } > "$tmp/in/Inbox/Attach.mbox"
  "$MBXMERGE" merge --from "$tmp/in" --into "$tmp/own.pst" > /dev/null
  cp "$tmp/own.pst" "$p/own_writer.pst"
  "$MBXMERGE" merge --from "$tmp/in" --into "$tmp/own_c.pst" --pst-encoding compressible > /dev/null
  cp "$tmp/own_c.pst" "$p/own_writer_compressible.pst"
fi

# ---- PST round trip: choice streams (few: each run writes and reads a store) ----
r=$corpus/pst_roundtrip
printf '\x00' > "$r/empty_message"
printf '\x02\x01\x00\x17\x08\x09\x01\x05\x0a\x02\x0b\x01\x03\x04\x02\x01\x00' > "$r/small"
python3 - "$r/mixed" <<'EOF'
import sys
# A deterministic mixture: every choice byte value in turn, then a pattern.
open(sys.argv[1], "wb").write(bytes(range(256)) + bytes((i * 37 + 11) % 256 for i in range(768)))
EOF
echo "seeds in $corpus:"; du -sh "$corpus"/*
