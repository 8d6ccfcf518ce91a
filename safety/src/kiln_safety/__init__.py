"""Children's safety: levels, a versioned policy per level, and checks behind one port.

``Screen`` runs the checks a level's policy names at one check point and answers one
``Decision``; a check that raises or cannot answer makes the decision ``unavailable``, never
``allowed`` (safety fails closed)."""
