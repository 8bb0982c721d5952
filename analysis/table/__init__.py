"""The results table, the contract between training and analysis: its columns, file names and status strings
(`contract`), the one reader of run workdirs (`workdirs`), loading any table (`load`), and
choosing its rows (`rows`: --where, --by groups, zero errors)."""
