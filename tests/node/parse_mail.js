// Parses each file named on the command line with mailparser and prints one
// JSON object per line: subject, from, to/cc/bcc names and addresses,
// attachment names, sizes and content types. Used by tests/pst_mime_test.cc as
// an independent reader of what mbxmerge writes.
'use strict';
const fs = require('fs');
const { simpleParser } = require('mailparser');

function addresses(field) {
  const out = [];
  if (!field) return out;
  const list = Array.isArray(field) ? field : [field];
  for (const f of list) {
    for (const v of f.value || []) {
      if (v.group) {
        if (v.group.length === 0) out.push({ name: v.name || '', address: '' });
        for (const g of v.group) out.push({ name: g.name || '', address: g.address || '' });
      } else {
        out.push({ name: v.name || '', address: v.address || '' });
      }
    }
  }
  return out;
}

async function main() {
  for (const file of process.argv.slice(2)) {
    const parsed = await simpleParser(fs.readFileSync(file));
    const result = {
      file,
      subject: parsed.subject || '',
      from: addresses(parsed.from),
      to: addresses(parsed.to),
      cc: addresses(parsed.cc),
      bcc: addresses(parsed.bcc),
      text: parsed.text || '',
      attachments: (parsed.attachments || []).map((a) => ({
        filename: a.filename || '',
        size: a.size,
        contentType: a.contentType,
        related: !!a.related,
      })),
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
