//! Sharding: one manifest split across N copies of haul (Kubernetes Indexed Jobs, AWS Batch
//! array jobs, Slurm arrays, or plain `--shard 2/8`). Every key belongs to exactly one shard:
//! the xxh3-64 hash (seed 0) of the transfer name, a NUL byte and the key (NFC, relative to
//! the transfer's root), modulo N. The hash is fixed by this definition, so every copy, on
//! every machine and every haul version, agrees on who owns what without talking to the others.

use std::fmt;

/// This copy's share of the keys: index `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("`--shard {text}` is not a shard: write it as INDEX/COUNT, such as `0/4` (indexes run from 0), or `auto`")]
    Syntax { text: String },
    #[error("`--shard {index}/{count}`: {}", if *count == 0 { "the count must be at least 1".to_string() } else { format!("the index must be below the count (0 to {})", count - 1) })]
    OutOfRange { index: u32, count: u32 },
    #[error("`--shard auto` found no shard in the environment: {found}")]
    NotInEnvironment { found: String },
    #[error("`{variable}={value}` is not a whole number")]
    BadVariable { variable: String, value: String },
    #[error(
        "`--shard auto` found two different shards: {first} and {second}; unset one of them or pass `--shard INDEX/COUNT`"
    )]
    Conflicting { first: String, second: String },
    #[error("`--shard-count {count}` goes with `--shard auto`; `--shard INDEX/COUNT` carries its own count")]
    CountWithoutAuto { count: u32 },
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// `INDEX/COUNT`, such as `0/4`.
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax { text: text.to_string() };
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }

    /// The shard a batch engine gave this process, read through `var` (the environment, or a
    /// map in tests). `count` is the count from `--shard-count` (Kubernetes sets the index but
    /// not the count).
    pub fn from_environment(var: impl Fn(&str) -> Option<String>, count: Option<u32>) -> Result<Shard, ShardError> {
        let number = |name: &str| -> Result<Option<u32>, ShardError> {
            match var(name) {
                None => Ok(None),
                Some(value) if value.trim().is_empty() => Ok(None),
                Some(value) => value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ShardError::BadVariable { variable: name.to_string(), value }),
            }
        };
        let count = match count {
            Some(count) => Some(count),
            None => number(COUNT_VARIABLE)?,
        };
        let mut found: Vec<(String, Shard)> = Vec::new();
        let mut partial: Vec<String> = Vec::new();

        // Kubernetes Indexed Job: the index only; the count is the Job's `completions`, which
        // the pod does not see, so it comes from --shard-count or HAUL_SHARD_COUNT.
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            match count {
                Some(count) => found.push(("JOB_COMPLETION_INDEX".into(), Shard::new(index, count)?)),
                None => partial.push(format!(
                    "JOB_COMPLETION_INDEX={index} is set (a Kubernetes Indexed Job), but not the count: pass \
                     `--shard-count N` or set {COUNT_VARIABLE} to the Job's `completions`"
                )),
            }
        }
        // AWS Batch array job: both.
        match (number("AWS_BATCH_JOB_ARRAY_INDEX")?, number("AWS_BATCH_JOB_ARRAY_SIZE")?.or(count)) {
            (Some(index), Some(size)) => found.push(("AWS_BATCH_JOB_ARRAY_INDEX".into(), Shard::new(index, size)?)),
            (Some(index), None) => partial.push(format!(
                "AWS_BATCH_JOB_ARRAY_INDEX={index} is set, but not AWS_BATCH_JOB_ARRAY_SIZE: pass `--shard-count N`"
            )),
            _ => {}
        }
        // Slurm job array: task IDs need not start at 0 (`--array=1-8`) or be consecutive
        // (`--array=0-15:4`), so the index is the position: (id - min) / step.
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            match number("SLURM_ARRAY_TASK_COUNT")?.or(count) {
                Some(tasks) if id >= min && (id - min) % step == 0 => {
                    found.push(("SLURM_ARRAY_TASK_ID".into(), Shard::new((id - min) / step, tasks)?))
                }
                Some(_) => partial.push(format!(
                    "SLURM_ARRAY_TASK_ID={id} is not on the array's grid (min {min}, step {step}): use \
                     `--array=0-N` or pass `--shard INDEX/COUNT`"
                )),
                None => partial.push(format!(
                    "SLURM_ARRAY_TASK_ID={id} is set, but not SLURM_ARRAY_TASK_COUNT: pass `--shard-count N`"
                )),
            }
        }
        match found.as_slice() {
            [] if partial.is_empty() => Err(ShardError::NotInEnvironment {
                found: "none of JOB_COMPLETION_INDEX (Kubernetes), AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch) or \
                        SLURM_ARRAY_TASK_ID (Slurm) is set; outside those, pass `--shard INDEX/COUNT`"
                    .into(),
            }),
            [] => Err(ShardError::NotInEnvironment { found: partial.join("; ") }),
            [(_, shard), rest @ ..] => {
                if let Some((other, different)) = rest.iter().find(|(_, s)| s != shard) {
                    return Err(ShardError::Conflicting {
                        first: format!("{shard} from {}", found[0].0),
                        second: format!("{different} from {other}"),
                    });
                }
                Ok(*shard)
            }
        }
    }

    /// Whether `key` of transfer `transfer` is this shard's to move (or delete).
    pub fn owns(&self, transfer: &str, key: &str) -> bool {
        self.count <= 1 || shard_of(transfer, key, self.count) == self.index
    }

    /// `2-of-4`: for file names (locks, reports, metrics).
    pub fn file_label(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where the count of a Kubernetes Indexed Job comes from, besides `--shard-count`.
pub const COUNT_VARIABLE: &str = "HAUL_SHARD_COUNT";

/// Which of `count` shards owns `key` of `transfer`.
pub fn shard_of(transfer: &str, key: &str, count: u32) -> u32 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(transfer.as_bytes());
    hasher.update(&[0]);
    hasher.update(key.as_bytes());
    (hasher.digest() % u64::from(count.max(1))) as u32
}

/// `path` with `{shard}` replaced by `2-of-4` (or `all` when not sharded), so one command
/// line run by every copy writes one report or metrics file per shard.
pub fn expand_path(path: &std::path::Path, shard: Option<Shard>) -> std::path::PathBuf {
    let text = path.to_string_lossy();
    if !text.contains("{shard}") {
        return path.to_path_buf();
    }
    let label = shard.map_or_else(|| "all".to_string(), |s| s.file_label());
    std::path::PathBuf::from(text.replace("{shard}", &label))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn parses_index_and_count_and_refuses_the_rest() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse(" 3 / 4 "), Ok(Shard { index: 3, count: 4 }));
        assert_eq!(Shard::parse("4/4"), Err(ShardError::OutOfRange { index: 4, count: 4 }));
        assert_eq!(Shard::parse("0/0"), Err(ShardError::OutOfRange { index: 0, count: 0 }));
        for bad in ["", "1", "1/", "/4", "a/4", "-1/4", "1/4/2", "1.5/4"] {
            assert_eq!(Shard::parse(bad), Err(ShardError::Syntax { text: bad.into() }), "{bad}");
        }
        assert!(Shard::parse("4/4").unwrap_err().to_string().contains("0 to 3"));
    }

    #[test]
    fn every_key_has_exactly_one_owner_whatever_the_count() {
        for count in [1, 2, 3, 4, 7, 16] {
            for n in 0..500 {
                let key = format!("folder-{}/file-{n}.csv", n % 7);
                let owners = (0..count).filter(|&i| Shard::new(i, count).unwrap().owns("nightly", &key)).count();
                assert_eq!(owners, 1, "{key} of {count} shards");
            }
        }
    }

    #[test]
    fn shares_are_even_and_depend_on_the_transfer_name() {
        let keys: Vec<String> = (0..10_000).map(|n| format!("reports/2026/{n:05}.parquet")).collect();
        let mut per_shard = [0usize; 4];
        for key in &keys {
            per_shard[shard_of("nightly", key, 4) as usize] += 1;
        }
        for share in per_shard {
            assert!((2_250..=2_750).contains(&share), "{per_shard:?}");
        }
        let moved = keys.iter().filter(|k| shard_of("nightly", k, 4) != shard_of("weekly", k, 4)).count();
        assert!(moved > 5_000, "two transfers should not shard identically ({moved} differ)");
    }

    #[test]
    fn the_hash_is_fixed_by_its_definition() {
        // Changing these breaks every running array job mid-flight: shards of two versions
        // would overlap and leave gaps. They are xxh3-64 of "nightly\0a.csv" etc.
        let digest = xxhash_rust::xxh3::xxh3_64(b"nightly\0a.csv");
        assert_eq!(shard_of("nightly", "a.csv", 1_000_003), (digest % 1_000_003) as u32);
        assert_eq!(
            [shard_of("nightly", "a.csv", 8), shard_of("nightly", "b.csv", 8), shard_of("t", "한글.csv", 8)],
            PINNED
        );
    }
    const PINNED: [u32; 3] = [1, 5, 3];

    #[test]
    fn kubernetes_needs_the_count_from_a_flag_or_variable() {
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2")]);
        let err = Shard::from_environment(&k8s, None).unwrap_err().to_string();
        assert!(err.contains("--shard-count") && err.contains("HAUL_SHARD_COUNT"), "{err}");
        assert_eq!(Shard::from_environment(&k8s, Some(4)), Ok(Shard { index: 2, count: 4 }));
        let with_variable = env(&[("JOB_COMPLETION_INDEX", "2"), ("HAUL_SHARD_COUNT", "3")]);
        assert_eq!(Shard::from_environment(with_variable, None), Ok(Shard { index: 2, count: 3 }));
        let out_of_range = env(&[("JOB_COMPLETION_INDEX", "4")]);
        assert_eq!(Shard::from_environment(out_of_range, Some(4)), Err(ShardError::OutOfRange { index: 4, count: 4 }));
    }

    #[test]
    fn aws_batch_and_slurm_give_both() {
        let batch = env(&[("AWS_BATCH_JOB_ARRAY_INDEX", "7"), ("AWS_BATCH_JOB_ARRAY_SIZE", "10")]);
        assert_eq!(Shard::from_environment(batch, None), Ok(Shard { index: 7, count: 10 }));
        let slurm = env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
        assert_eq!(Shard::from_environment(slurm, None), Ok(Shard { index: 3, count: 4 }));
        // `#SBATCH --array=1-4`: IDs 1..4 are positions 0..3.
        let from_one =
            env(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
        assert_eq!(Shard::from_environment(from_one, None), Ok(Shard { index: 3, count: 4 }));
        // `--array=0-15:4`: IDs 0, 4, 8, 12.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "8"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(Shard::from_environment(stepped, None), Ok(Shard { index: 2, count: 4 }));
    }

    #[test]
    fn nothing_half_or_contradictory_in_the_environment_is_an_error_that_says_what_to_do() {
        let none = Shard::from_environment(env(&[]), None).unwrap_err().to_string();
        assert!(none.contains("JOB_COMPLETION_INDEX") && none.contains("--shard INDEX/COUNT"), "{none}");
        let half = Shard::from_environment(env(&[("AWS_BATCH_JOB_ARRAY_INDEX", "1")]), None).unwrap_err();
        assert!(half.to_string().contains("AWS_BATCH_JOB_ARRAY_SIZE"), "{half}");
        let bad = Shard::from_environment(env(&[("SLURM_ARRAY_TASK_ID", "x")]), None).unwrap_err();
        assert_eq!(bad, ShardError::BadVariable { variable: "SLURM_ARRAY_TASK_ID".into(), value: "x".into() });
        let both = env(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "1"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "4"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        let conflict = Shard::from_environment(both, None).unwrap_err().to_string();
        assert!(conflict.contains("1/4") && conflict.contains("2/4"), "{conflict}");
    }

    #[test]
    fn paths_name_their_shard() {
        let path = std::path::Path::new("/var/log/haul/report-{shard}.json");
        assert_eq!(expand_path(path, Shard::new(2, 4).ok()), std::path::Path::new("/var/log/haul/report-2-of-4.json"));
        assert_eq!(expand_path(path, None), std::path::Path::new("/var/log/haul/report-all.json"));
        assert_eq!(expand_path(std::path::Path::new("r.json"), Shard::new(0, 2).ok()), std::path::Path::new("r.json"));
    }
}
