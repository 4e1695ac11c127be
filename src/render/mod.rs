//! Renderers: decoded messages as a table or JSON lines.
