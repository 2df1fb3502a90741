"""Property billing (物业计费): fee items (自定义收费) and their pure computation (`fees.py`),
the monthly run that charges or bills them, postpaid bills (后付费) and arrears, the real-time
bill (实时账单). Money moves through server.ledger only."""
