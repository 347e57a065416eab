"""One module per emulated AWS service; one method per operation."""
