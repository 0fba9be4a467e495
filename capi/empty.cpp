// Placeholder translation unit: the archive is made of the components' objects.
