//! canonical format reader.
use super::*;

/// Open a reader.
pub fn open<'a>(
    _input: Box<dyn std::io::Read + 'a>,
    _path_hint: &str,
    _options: &ReadOptions,
) -> Result<Box<dyn OrderReader + 'a>, FileError> {
    Err(FileError::Empty { expected: vec![] })
}
