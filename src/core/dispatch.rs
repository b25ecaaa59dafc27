//! Which runner takes a queued run: one of the right user whose platform and labels fit and that
//! has a free slot, least loaded first.

use super::config::Check;
use super::fields::Platform;

/// What a run needs of its runner: the check's `platform` and `labels`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Requirements {
    /// `os/arch`, as in `tether.toml`.
    pub platform: Option<String>,
    pub labels: Vec<String>,
}

impl Requirements {
    pub fn of(check: &Check) -> Requirements {
        Requirements {
            platform: check.platform.as_ref().map(|p| p.to_string()),
            labels: check.labels.clone(),
        }
    }

    /// Whether a runner with this platform and these labels can run it.
    pub fn fit(&self, os: &str, arch: &str, labels: &[String]) -> bool {
        let platform_fits = match self.platform.as_deref().map(Platform::parse) {
            Some(Ok(platform)) => platform.fits(os, arch),
            Some(Err(_)) => false,
            None => true,
        };
        platform_fits && self.labels.iter().all(|wanted| labels.contains(wanted))
    }
}

/// A connected runner as dispatch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub os: String,
    pub arch: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    pub in_flight: u32,
}

/// The index of the runner that should take a run needing `needs`, or `None` if none can now.
/// Ties go to the runner with more free slots, then to the name, so that the choice is stable.
pub fn pick_runner(needs: &Requirements, candidates: &[Candidate]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.in_flight < c.capacity && needs.fit(&c.os, &c.arch, &c.labels))
        .min_by(|(_, a), (_, b)| {
            let load = |c: &Candidate| c.in_flight as f64 / c.capacity as f64;
            load(a)
                .total_cmp(&load(b))
                .then((b.capacity - b.in_flight).cmp(&(a.capacity - a.in_flight)))
                .then(a.name.cmp(&b.name))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Config;

    fn candidate(name: &str, labels: &[&str], capacity: u32, in_flight: u32) -> Candidate {
        Candidate {
            name: name.into(),
            os: "linux".into(),
            arch: "amd64".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            capacity,
            in_flight,
        }
    }

    #[test]
    fn least_loaded_fitting_runner_with_a_free_slot() {
        let config = Config::parse("[checks.c]\nrun = \"x\"\nlabels = [\"gpu\"]\n").unwrap();
        let check = &Requirements::of(&config.checks["c"]);
        let runners = [
            candidate("a-no-gpu", &[], 4, 0),
            candidate("b-full", &["gpu"], 2, 2),
            candidate("c-half", &["gpu"], 2, 1),
            candidate("d-quarter", &["gpu"], 4, 1),
        ];
        assert_eq!(pick_runner(check, &runners), Some(3));
        assert_eq!(pick_runner(check, &runners[..3]), Some(2));
        assert_eq!(pick_runner(check, &runners[..2]), None);
    }

    #[test]
    fn ties_prefer_more_free_slots_then_the_name() {
        let config = Config::parse("[checks.c]\nrun = \"x\"\n").unwrap();
        let check = &Requirements::of(&config.checks["c"]);
        let runners =
            [candidate("z", &[], 1, 0), candidate("y", &[], 2, 0), candidate("x", &[], 2, 0)];
        assert_eq!(pick_runner(check, &runners), Some(2));
    }

    #[test]
    fn platform_and_labels_decide_which_runners_fit() {
        let c = Config::parse(
            "[checks.gpu]\nrun = \"true\"\nplatform = \"linux/x86_64\"\nlabels = [\"gpu\", \"big\"]\n\
             [checks.any]\nrun = \"true\"\n",
        )
        .unwrap();
        let gpu = &Requirements::of(&c.checks["gpu"]);
        let any = Requirements::of(&c.checks["any"]);
        let runner_fits = |needs: &Requirements, os: &str, arch: &str, labels: &[String]| {
            needs.fit(os, arch, labels)
        };
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(runner_fits(gpu, "linux", "amd64", &labels(&["big", "gpu", "x"])));
        assert!(runner_fits(gpu, "linux", "x86_64", &labels(&["big", "gpu"])));
        assert!(!runner_fits(gpu, "linux", "amd64", &labels(&["gpu"])));
        assert!(!runner_fits(gpu, "macos", "amd64", &labels(&["big", "gpu"])));
        assert!(!runner_fits(gpu, "linux", "arm64", &labels(&["big", "gpu"])));
        assert!(runner_fits(&any, "macos", "arm64", &[]));
    }
}
