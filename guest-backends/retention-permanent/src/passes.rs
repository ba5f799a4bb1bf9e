//! The two-pass protocol the host follows for filtered units: every record
//! goes through `observe` (pass one) before any goes through `decide`
//! (pass two), and pass two sees the same records in the same order. A host
//! that breaks the order gets an error instead of a silent wrong answer.

/// Records seen by each pass so far.
#[derive(Default, Debug)]
pub struct Passes {
    observed: u64,
    decided: u64,
    deciding: bool,
}

impl Passes {
    /// Accounts for a pass-one batch of `len` records.
    pub fn observe(&mut self, len: usize) -> Result<(), String> {
        if self.deciding {
            return Err(format!(
                "observe called after decide had begun ({} of {} records decided); pass one must finish before pass two",
                self.decided, self.observed
            ));
        }
        self.observed += len as u64;
        Ok(())
    }

    /// Accounts for a pass-two batch of `len` records.
    pub fn decide(&mut self, len: usize) -> Result<(), String> {
        self.deciding = true;
        let after = self.decided + len as u64;
        if after > self.observed {
            return Err(format!(
                "decide got records up to #{after} but observe saw only {}; pass two must replay the records of pass one",
                self.observed
            ));
        }
        self.decided = after;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Passes;

    #[test]
    fn decide_follows_observe() {
        let mut p = Passes::default();
        p.observe(3).unwrap();
        p.observe(2).unwrap();
        p.decide(4).unwrap();
        p.decide(1).unwrap();
    }

    #[test]
    fn observe_after_decide_is_refused() {
        let mut p = Passes::default();
        p.observe(2).unwrap();
        p.decide(1).unwrap();
        let e = p.observe(1).unwrap_err();
        assert!(e.contains("observe called after decide"), "{e}");
    }

    #[test]
    fn decide_beyond_observed_is_refused() {
        let mut p = Passes::default();
        p.observe(2).unwrap();
        let e = p.decide(3).unwrap_err();
        assert!(
            e.contains("records up to #3") && e.contains("saw only 2"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_decide_still_ends_pass_one() {
        let mut p = Passes::default();
        p.decide(0).unwrap();
        assert!(p.observe(0).is_err());
    }
}
