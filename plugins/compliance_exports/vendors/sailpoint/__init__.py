"""SailPoint Identity Security Cloud reports: report types, arguments and file formats."""
