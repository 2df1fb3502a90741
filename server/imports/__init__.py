"""Setting up a park from the workbook staff already keep: rooms, tenants and meters in one
Excel file, previewed with row-level errors and committed all or nothing. It sits above the
contexts it fills (places, accounts, metering) and calls their services."""
