//! Mapping a JSON Pointer back to a line and column of the source text, so that findings
//! (which carry pointers) can be shown where the user wrote the offending value.

/// The 1-based (line, column) where the value at `pointer` starts in `text`; for a pointer
/// that does not exist (e.g. a missing field), the position of its deepest existing ancestor.
/// `None` if `text` is not valid JSON.
pub fn locate(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let target: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut s = Scanner {
        b: text.as_bytes(),
        pos: 0,
        path: Vec::new(),
        target: &target,
        best: (0, 0),
    };
    s.ws();
    match s.value(0) {
        Ok(()) | Err(Some(Stop)) => Some(line_col(text, s.best.1)),
        Err(None) => None,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    path: Vec<String>,
    target: &'a [String],
    /// (matched depth, offset) of the deepest value on the target's path seen so far.
    best: (usize, usize),
}

/// Found the target: stop scanning.
struct Stop;

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.pos < self.b.len() && self.b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), Option<Stop>> {
        if depth > 256 {
            return Err(None);
        }
        if self.target.starts_with(&self.path) && self.path.len() >= self.best.0 {
            self.best = (self.path.len(), self.pos);
            if self.path.len() == self.target.len() {
                return Err(Some(Stop));
            }
        }
        match self.b.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                self.ws();
                if self.b.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    let start = self.pos;
                    self.string()?;
                    let key: String =
                        serde_json::from_slice(&self.b[start..self.pos]).map_err(|_| None)?;
                    self.ws();
                    if self.b.get(self.pos) != Some(&b':') {
                        return Err(None);
                    }
                    self.pos += 1;
                    self.ws();
                    self.path.push(key);
                    self.value(depth + 1)?;
                    self.path.pop();
                    self.ws();
                    match self.b.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(None),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.ws();
                if self.b.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(());
                }
                let mut i = 0usize;
                loop {
                    self.ws();
                    self.path.push(i.to_string());
                    self.value(depth + 1)?;
                    self.path.pop();
                    i += 1;
                    self.ws();
                    match self.b.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(None),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(_) => {
                while self.pos < self.b.len()
                    && !matches!(self.b[self.pos], b',' | b'}' | b']')
                    && !self.b[self.pos].is_ascii_whitespace()
                {
                    self.pos += 1;
                }
                Ok(())
            }
            None => Err(None),
        }
    }

    fn string(&mut self) -> Result<(), Option<Stop>> {
        if self.b.get(self.pos) != Some(&b'"') {
            return Err(None);
        }
        self.pos += 1;
        while let Some(&c) = self.b.get(self.pos) {
            self.pos += 1;
            match c {
                b'\\' => self.pos += 1,
                b'"' => return Ok(()),
                _ => {}
            }
        }
        Err(None)
    }
}

#[cfg(test)]
mod tests {
    use super::locate;

    const DOC: &str = "{\n  \"id\": \"w\",\n  \"nodes\": [\n    {\"id\": \"a\", \"config\": {\"u/rl\": 5}},\n    {\"id\": \"b\"}\n  ]\n}";

    #[test]
    fn finds_values() {
        assert_eq!(locate(DOC, ""), Some((1, 1)));
        assert_eq!(locate(DOC, "/id"), Some((2, 9)));
        assert_eq!(locate(DOC, "/nodes/1"), Some((5, 5)));
        assert_eq!(locate(DOC, "/nodes/0/config/u~1rl"), Some((4, 36)));
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        assert_eq!(locate(DOC, "/nodes/1/config/url"), Some((5, 5)));
        assert_eq!(locate(DOC, "/edges/0"), Some((1, 1)));
    }

    #[test]
    fn invalid_json_has_no_positions() {
        assert_eq!(locate("{\"a\": [1,", "/b"), None);
    }
}
