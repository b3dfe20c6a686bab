//! How a file an image names was found again (a recorded or another tool's LoRA or
//! embedding), with what to tell the user: the same three outcomes for every kind of file.

/// How a file an image names was found, with what to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// At its recorded path, with its recorded sha256.
    AtRecordedPath,
    /// In the models folders by its hash (a note says where).
    ByHash(String),
    /// In the models folders by name only, its contents other or unchecked (a warning says
    /// so).
    ByName(String),
}
