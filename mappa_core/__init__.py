"""mappa_core: the pure rules of MAPPA performance management, plus import and storage."""
