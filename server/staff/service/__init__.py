"""Staff services: users and passwords (`users`), sign-in and sessions (`signin`), what a
staff member may see (`scope`) and the admin dashboard's figures (`dashboard`). Import from
the modules; nothing is re-exported here."""
