// Reads a PST or OST with the npm package pst-extractor (a port of java-libpst)
// and prints one JSON document: the folder tree from the IPM subtree down, each
// folder with its messages (headers, recipients, bodies, attachments with the
// SHA-256 of their bytes). Used by tests/pst_oracles.cc as one of three
// independent PST readers. Usage: node pst_dump.js FILE.pst
// Errors go to stderr with exit status 1.
'use strict';
const crypto = require('crypto');
const util = require('util');

// pst-extractor reports unknown message classes with console.log; keep stdout
// for the JSON alone.
console.log = (...args) => process.stderr.write(util.format(...args) + '\n');

const { PSTFile } = require('pst-extractor');

const PR_IPM_SUBTREE_ENTRYID = 0x35e0;
const PR_SENDER_SMTP_ADDRESS = 0x5d01;
const PR_SENT_REPRESENTING_SMTP_ADDRESS = 0x5d02;
const ATTACH_BY_VALUE = 1;
const ATTACH_EMBEDDED_MSG = 5;
// libpst's fallback as well: OST message stores carry no PR_IPM_SUBTREE_ENTRYID
// and their IPM subtree ("Root - Mailbox/IPM_SUBTREE") has this node id.
const OST_IPM_SUBTREE_NID = 0x2142;

function iso(date) {
  return date instanceof Date && !isNaN(date.getTime()) ? date.toISOString() : null;
}

function nid(obj) {
  return Number(obj.descriptorNodeId.toString());
}

function attachmentBytes(att) {
  const stream = att.fileInputStream;
  if (!stream) return Buffer.alloc(0);
  const buf = Buffer.alloc(Number(stream.length.toString()));
  if (buf.length > 0) stream.readCompletely(buf);
  return buf;
}

function dumpAttachment(att, depth) {
  const method = att.attachMethod;
  const out = {
    filename: att.longFilename || att.filename || att.displayName || '',
    displayName: att.displayName || '',
    attachMethod: method,
    mimeTag: att.mimeTag || '',
    contentId: att.contentId || '',
  };
  if (method === ATTACH_EMBEDDED_MSG) {
    const inner = att.embeddedPSTMessage;
    out.embedded = inner && depth < 8 ? dumpMessage(inner, depth + 1) : null;
    out.size = 0;
    out.sha256 = '';
  } else {
    const bytes = method === ATTACH_BY_VALUE || att.fileInputStream ? attachmentBytes(att) : Buffer.alloc(0);
    out.size = bytes.length;
    out.sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  }
  return out;
}

function dumpMessage(m, depth) {
  const recipients = [];
  for (let i = 0; i < m.numberOfRecipients; i++) {
    const r = m.getRecipient(i);
    if (!r) continue;
    recipients.push({
      name: r.displayName || '',
      email: r.emailAddress || '',
      smtpAddress: r.smtpAddress || '',
      addrType: r.addrType || '',
      type: r.recipientType,
    });
  }
  const attachments = [];
  for (let i = 0; i < m.numberOfAttachments; i++) attachments.push(dumpAttachment(m.getAttachment(i), depth));
  return {
    subject: m.subject || '',
    messageClass: m.messageClass || '',
    senderName: m.senderName || '',
    senderEmailAddress: m.senderEmailAddress || '',
    senderAddrType: m.senderAddrtype || '',
    senderSmtpAddress: m.getStringItem(PR_SENDER_SMTP_ADDRESS) || '',
    sentRepresentingName: m.sentRepresentingName || '',
    sentRepresentingEmailAddress: m.sentRepresentingEmailAddress || '',
    sentRepresentingSmtpAddress: m.getStringItem(PR_SENT_REPRESENTING_SMTP_ADDRESS) || '',
    displayTo: m.displayTo || '',
    displayCc: m.displayCC || '',
    displayBcc: m.displayBCC || '',
    recipients,
    body: m.body || '',
    bodyHTML: m.bodyHTML || '',
    internetMessageId: m.internetMessageId || '',
    hasTransportHeaders: (m.transportMessageHeaders || '').length > 0,
    clientSubmitTime: iso(m.clientSubmitTime),
    messageDeliveryTime: iso(m.messageDeliveryTime),
    hasAttachments: m.hasAttachments,
    attachments,
  };
}

function dumpFolder(folder, path) {
  const out = {
    name: folder.displayName || '',
    path,
    containerClass: folder.containerClass || '',
    messages: [],
    folders: [],
  };
  if (folder.contentCount > 0) {
    for (let m = folder.getNextChild(); m; m = folder.getNextChild()) out.messages.push(dumpMessage(m, 0));
  }
  if (folder.hasSubfolders) {
    for (const sub of folder.getSubFolders()) {
      const name = sub.displayName || '';
      out.folders.push(dumpFolder(sub, path === '' ? name : path + '/' + name));
    }
  }
  return out;
}

// Depth-first search of the whole hierarchy for the folder with node id `want`.
function findFolder(folder, want) {
  if (nid(folder) === want) return folder;
  if (!folder.hasSubfolders) return null;
  for (const sub of folder.getSubFolders()) {
    const hit = findFolder(sub, want);
    if (hit) return hit;
  }
  return null;
}

function main() {
  const file = process.argv[2];
  if (!file || process.argv.length !== 3) throw new Error('usage: node pst_dump.js FILE.pst');
  const pst = new PSTFile(file);
  const store = pst.getMessageStore();
  // The entry id ends with the folder's 32-bit node id.
  const entryId = store.getBinaryItem(PR_IPM_SUBTREE_ENTRYID);
  const want = entryId && entryId.length >= 4 ? entryId.readUInt32LE(entryId.length - 4) : OST_IPM_SUBTREE_NID;
  const top = findFolder(pst.getRootFolder(), want);
  if (!top) throw new Error('IPM subtree folder (node 0x' + want.toString(16) + ') not found');
  const result = {
    file,
    storeName: store.displayName || '',
    ipmSubtreeName: top.displayName || '',
    root: dumpFolder(top, ''),
  };
  pst.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

try {
  main();
} catch (e) {
  // Some messages quote raw file bytes; keep the first line, printable only.
  const text = String(e && e.message ? e.message : e).split('\n')[0].replace(/[^\x20-\x7e]/g, '?');
  process.stderr.write('pst_dump: ' + text.slice(0, 300) + '\n');
  process.exit(1);
}
