//! taobao format reader.
use super::*;

/// Open a reader.
pub fn open<'a>(
    _input: Box<dyn std::io::Read + 'a>,

    _options: &ReadOptions,
) -> Result<Box<dyn OrderReader + 'a>, FileError> {
    Err(FileError::Empty { expected: vec![] })
}
