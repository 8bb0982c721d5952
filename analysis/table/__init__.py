"""The results table, the contract between training and analysis: its columns, file names and status strings
(`contract`), the one reader of run workdirs (`workdirs`), and loading any table (`load`)."""
