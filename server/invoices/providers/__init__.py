"""E-invoice platform adapters: what a platform is asked (`base`) and the Nuonuo open API
client (`nuonuo`). They know nothing of our tables: the issuing service hands them plain
orders and gets results back."""
