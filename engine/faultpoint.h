// \brief Named crash points: kill -9 at an exact place of a run, for the fault
// injection tests (tests/fault_injection_test.cc).
//
//   MBXMERGE_CRASH_AT=NAME[:N]  the N-th time (default 1) the point NAME is
//                               reached, the process sends itself SIGKILL there:
//                               no destructor, no flush, no unlock, as a power cut.
//   MBXMERGE_CRASH_LIST=FILE    appends the name of every point reached to FILE,
//                               one a line, so a test can discover a run's points.
//
// The environment is read once. Unset, a point costs one relaxed atomic load.
//
// The points, in the order a run passes them (* = once per batch or per item):
//
//   engine/merge.cc, the committer:
//     merge.commit.after-stage *         a message was staged, between messages
//     merge.batch.before-flush *         a full batch is staged, not yet flushed
//     merge.batch.after-flush *          a batch is durable, the next not begun
//     merge.close.before                 everything read, before the target's Close()
//     merge.archive.before               target closed and synced, no source touched yet
//     merge.archive.after-unlink *       --mode archive: one source file removed
//     merge.archive.before-source-rewrite *  before a whole-file source is rewritten
//   engine/fs.cc, AtomicWriteFile (the mbox undo record, the replace journal,
//   reconnect.ldif):
//     fs.atomic-write.after-temp-write * temp file written, not synced
//     fs.atomic-write.after-fsync *      temp file synced, not renamed
//     fs.atomic-write.after-rename *     renamed, directory not synced
//   formats/maildir/maildir.cc, MaildirSink::Convert (--jobs > 1, a worker):
//     maildir.convert.after-write *      a message written ahead into the root's tmp/
//   formats/maildir/maildir.cc, MaildirSink::Flush:
//     maildir.flush.after-data-sync *    tmp/ files synced, nothing renamed
//     maildir.flush.after-journal *      --mode replace: journal written, nothing renamed
//     maildir.flush.after-rename *       one tmp/ file renamed into new/ or cur/
//     maildir.flush.after-renames *      all renamed, directories not synced
//     maildir.flush.after-dir-sync *     directories synced, replace journal not finished
//     maildir.replace.after-unlink *     one replaced file removed (the EML sink's too)
//     maildir.replace.before-journal-remove *  all replaced files removed (EML too)
//   formats/mbox/mbox.cc, MboxSink::Prepare/Commit and MboxSource::RemoveMessages:
//     mbox.append.after-undo-record *    undo record durable, nothing appended
//     mbox.append.after-spill *          a batch past 1 MiB: its first part appended, more staged
//     mbox.append.mid-write *            half the batch appended (a torn append)
//     mbox.append.after-write *          batch appended, not synced
//     mbox.append.after-fsync *          batch synced, undo record still there
//     mbox.commit.after-undo-remove *    undo record removed, directory not synced
//     mbox.rewrite.after-temp-write      archive, replace: rewritten copy written, not synced
//     mbox.rewrite.before-rename         archive, replace: rewritten copy synced, not renamed
//     mbox.rewrite.after-rename          archive: renamed over the source, dir not synced
//   formats/eml/eml.cc, EmlSink::Flush:
//     eml.flush.after-data-sync *        temp files synced (replace journal written), nothing
//     renamed eml.flush.after-rename *           one temp file renamed to its .eml name
//     eml.flush.after-renames *          all renamed, directories not synced
//   formats/pst/pst_sink.cc, PstSink (a new or rewritten PST; archive's rewrite too):
//     pst.copy-existing.message *        one existing message copied into the new file
//     pst.close.before-finish            everything written, B-trees and maps not yet
//     pst.close.after-finish             temp file complete and synced, not renamed
//     pst.close.before-rename            (after the .bak link) not renamed
//     pst.close.after-rename             renamed, directory not synced
//   engine/recovery/transfer.cc, per user:
//     export.after-merge *               a user's mailbox exported, journal not yet saying so
//     import.after-merge *               a user's file imported, journal not yet saying so
//   engine/recovery/recover.cc, per user (* = once per user, even where a
//   group of users whose merges have finished goes through a step together;
//   g = once per such group):
//     recover.after-ldif-rewrite         reconnect.ldif rewritten from the journal
//     recover.after-merge *              merged, journal not yet saying so
//     recover.ldif.mid-append *          half of a user's change record written
//     recover.ldif.after-append g        change records durable, journal not yet saying so
//     recover.after-journal-reconnected g  journal says merged and reconnected (one append)
//     recover.retire.before-rename *     retired/ exists, blank mailbox not moved
//     recover.retire.after-rename *      moved, directories not synced
//     recover.after-journal-retired *
#pragma once

#include <atomic>

namespace mbx::fault {
namespace internal {

enum : int { kUnknown = 0, kOff = 1, kOn = 2 };
// Constant-initialized, so a point reached during static initialization is safe.
extern std::atomic<int> g_state;
void Reached(const char* name);

}  // namespace internal

// The point `name` (a string literal) is reached.
inline void CrashPoint(const char* name) {
  if (internal::g_state.load(std::memory_order_relaxed) != internal::kOff) internal::Reached(name);
}

}  // namespace mbx::fault

#define MBX_CRASH_POINT(name) ::mbx::fault::CrashPoint(name)
