"""The park's structure as staff manage it: sites, buildings, floors and rooms — scoped
lists, details, create, edit and retire (never delete), each change in the operation log."""
