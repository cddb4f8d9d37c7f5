"""Classic-control tasks (gymnasium) and the policies that act in them."""
