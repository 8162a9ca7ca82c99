"""Text processing shared by services (sentence splitting)."""
