"""Report rendering: figures, tables, HTML and Markdown."""
