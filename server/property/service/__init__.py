"""Property billing's use cases: fee items (`items`), the monthly run (`run`), bills and
arrears (`bills`), the real-time bill (`statement`)."""
