// \brief The table shapes of an Outlook store: the column sets, cell offsets
// and existence bits of the template tables and special folders' tables in
// Outlook's own empty store, so that our tables match what Outlook writes.
#pragma once

#include "formats/pst/ltp/writer.h"

namespace mbx::pst::messaging::schema {

// Node 0x12F of Outlook's empty store.
const ltp::TableSchema& RootAssocContentsTable();
// Node 0x60D of Outlook's empty store.
const ltp::TableSchema& HierarchyTable();
// Node 0x60E of Outlook's empty store.
const ltp::TableSchema& ContentsTable();
// Node 0x60F of Outlook's empty store.
const ltp::TableSchema& AssocContentsTable();
// Node 0x610 of Outlook's empty store.
const ltp::TableSchema& SearchContentsTable();
// Node 0x62B of Outlook's empty store.
const ltp::TableSchema& ReceiveFolderTable();
// Node 0x64C of Outlook's empty store.
const ltp::TableSchema& OutgoingQueueTable();
// Node 0x671 of Outlook's empty store.
const ltp::TableSchema& AttachmentTable();
// Node 0x692 of Outlook's empty store.
const ltp::TableSchema& RecipientTable();
// Node 0x6B6 of Outlook's empty store.
const ltp::TableSchema& Template6B6();
// Node 0x6D7 of Outlook's empty store.
const ltp::TableSchema& Template6D7();
// Node 0x6F8 of Outlook's empty store.
const ltp::TableSchema& Template6F8();
// Node 0x802D of Outlook's empty store.
const ltp::TableSchema& IpmSubtreeHierarchyTable();
// Node 0x802E of Outlook's empty store.
const ltp::TableSchema& IpmSubtreeContentsTable();
// Node 0x804D of Outlook's empty store.
const ltp::TableSchema& SearchRootHierarchyTable();
// Node 0x808F of Outlook's empty store.
const ltp::TableSchema& CommonViewsAssocContentsTable();

}  // namespace mbx::pst::messaging::schema
