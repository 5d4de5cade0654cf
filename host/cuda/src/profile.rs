//! A CUPTI trace of what the driver and the GPU did over a stretch of a
//! run: each driver function's calls and host time, each kernel's launches
//! and GPU time, and the copies. The bench binaries take it when
//! `BITSAGE_CUPTI=1` (CUPTI, `libcupti.so`, must be on the library path:
//! `/usr/local/cuda/extras/CUPTI/lib64` in the toolkit); where no
//! profiler tool is at hand (no Nsight Systems on the GPU machine), this
//! says where a proof's fixed cost goes.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::Mutex;

use cudarc::cupti::result::activity;
use cudarc::cupti::sys;

/// CUPTI's activity buffers: 8 MiB each, 8-byte aligned.
const BUFFER_BYTES: usize = 8 << 20;

/// One activity record, as far as the report needs it.
#[derive(Clone, Debug)]
enum Record {
    /// A driver call: its function's callback id, host start and end (ns).
    Api { cbid: u32, start: u64, end: u64 },
    /// A kernel: its name, GPU start and end (ns).
    Kernel { name: String, start: u64, end: u64 },
    /// A copy: direction (CUPTI's copy kind), bytes, GPU start and end (ns).
    Copy { kind: u8, bytes: u64, start: u64, end: u64 },
}

fn records() -> &'static Mutex<Vec<Record>> {
    static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());
    &RECORDS
}

fn layout() -> std::alloc::Layout {
    // A constant size and a power-of-two alignment: always a valid layout.
    std::alloc::Layout::from_size_align(BUFFER_BYTES, 8).unwrap_or_else(|_| std::alloc::Layout::new::<u64>())
}

extern "C" fn buffer_requested(buffer: *mut *mut u8, size: *mut usize, max_records: *mut usize) {
    // SAFETY: CUPTI passes valid out-pointers; the buffer is freed in `buffer_completed`.
    unsafe {
        *buffer = std::alloc::alloc(layout());
        *size = if (*buffer).is_null() { 0 } else { BUFFER_BYTES };
        *max_records = 0;
    }
}

extern "C" fn buffer_completed(
    _ctx: cudarc::driver::sys::CUcontext,
    _stream: u32,
    buffer: *mut u8,
    _size: usize,
    valid: usize,
) {
    let mut got = Vec::new();
    let mut record: *mut sys::CUpti_Activity = std::ptr::null_mut();
    // SAFETY: CUPTI hands back a buffer from `buffer_requested` with `valid` bytes of records; each
    // record is read as the struct its kind names (the fields read are a prefix common to every
    // version of that struct).
    unsafe {
        while activity::get_next_record(buffer, valid, &mut record).is_ok() {
            match (*record).kind {
                sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER => {
                    let r = &*(record as *const sys::CUpti_ActivityAPI);
                    got.push(Record::Api { cbid: r.cbid, start: r.start, end: r.end });
                }
                sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL
                | sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_KERNEL => {
                    let r = &*(record as *const sys::CUpti_ActivityKernel4);
                    let name = if r.name.is_null() {
                        "?".to_string()
                    } else {
                        CStr::from_ptr(r.name).to_string_lossy().into_owned()
                    };
                    got.push(Record::Kernel { name, start: r.start, end: r.end });
                }
                sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY => {
                    let r = &*(record as *const sys::CUpti_ActivityMemcpy);
                    got.push(Record::Copy { kind: r.copyKind, bytes: r.bytes, start: r.start, end: r.end });
                }
                _ => {}
            }
        }
        if !buffer.is_null() {
            std::alloc::dealloc(buffer, layout());
        }
    }
    records().lock().unwrap_or_else(|p| p.into_inner()).extend(got);
}

const KINDS: [sys::CUpti_ActivityKind; 3] = [
    sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER,
    sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
    sys::CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY,
];

/// Whether `BITSAGE_CUPTI=1` asks for traces.
pub fn wanted() -> bool {
    std::env::var("BITSAGE_CUPTI").is_ok_and(|v| v == "1")
}

/// Starts recording (after [`Trace::stop`], again).
pub fn start() -> Result<(), String> {
    records().lock().unwrap_or_else(|p| p.into_inner()).clear();
    activity::register_callbacks(Some(buffer_requested), Some(buffer_completed))
        .map_err(|e| format!("CUPTI: {e:?}"))?;
    for k in KINDS {
        activity::enable(k).map_err(|e| format!("CUPTI: enabling {k:?}: {e:?}"))?;
    }
    Ok(())
}

/// Stops recording and returns what was recorded since [`start`]. The
/// device must be idle (synchronised) for every kernel to be in it.
pub fn stop() -> Result<Trace, String> {
    for k in KINDS {
        activity::disable(k).map_err(|e| format!("CUPTI: disabling {k:?}: {e:?}"))?;
    }
    // CUPTI_ACTIVITY_FLAG_FLUSH_FORCED: also the buffers not yet full.
    activity::flush_all(1).map_err(|e| format!("CUPTI: flush: {e:?}"))?;
    Ok(Trace { records: std::mem::take(&mut *records().lock().unwrap_or_else(|p| p.into_inner())) })
}

/// What one stretch recorded.
pub struct Trace {
    records: Vec<Record>,
}

/// Calls (or launches, or copies) of one name: how many, their summed time.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub count: u64,
    pub total_ns: u64,
    pub bytes: u64,
}

impl Trace {
    /// Driver functions by summed host time, largest first.
    pub fn driver_calls(&self) -> Vec<Row> {
        let mut by: HashMap<u32, Row> = HashMap::new();
        for r in &self.records {
            if let Record::Api { cbid, start, end } = r {
                let row =
                    by.entry(*cbid).or_insert_with(|| Row { name: api_name(*cbid), count: 0, total_ns: 0, bytes: 0 });
                row.count += 1;
                row.total_ns += end.saturating_sub(*start);
            }
        }
        sorted(by.into_values())
    }

    /// Kernels by summed GPU time, largest first; copies (by direction) among them.
    pub fn gpu_work(&self) -> Vec<Row> {
        let mut by: HashMap<String, Row> = HashMap::new();
        for r in &self.records {
            let (name, ns, bytes) = match r {
                Record::Kernel { name, start, end } => (name.clone(), end.saturating_sub(*start), 0),
                Record::Copy { kind, bytes, start, end } => (copy_name(*kind), end.saturating_sub(*start), *bytes),
                Record::Api { .. } => continue,
            };
            let row = by.entry(name.clone()).or_insert_with(|| Row { name, count: 0, total_ns: 0, bytes: 0 });
            row.count += 1;
            row.total_ns += ns;
            row.bytes += bytes;
        }
        sorted(by.into_values())
    }

    /// Nanoseconds in which at least one kernel or copy ran on the GPU.
    pub fn gpu_busy_ns(&self) -> u64 {
        let mut spans: Vec<(u64, u64)> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Kernel { start, end, .. } | Record::Copy { start, end, .. } => Some((*start, *end)),
                Record::Api { .. } => None,
            })
            .collect();
        spans.sort_unstable();
        union_ns(&spans)
    }

    /// The report as markdown: the top `n` driver functions and GPU items.
    pub fn markdown(&self, n: usize) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let calls = self.driver_calls();
        let (count, ns): (u64, u64) = calls.iter().fold((0, 0), |a, r| (a.0 + r.count, a.1 + r.total_ns));
        let _ = writeln!(s, "driver calls: {count}, host time in them {:.2} ms", ns as f64 / 1e6);
        let _ = writeln!(s, "\n| driver function | calls | total ms | mean us |\n|---|---:|---:|---:|");
        for r in calls.iter().take(n) {
            let mean = r.total_ns as f64 / r.count.max(1) as f64 / 1e3;
            let _ = writeln!(s, "| {} | {} | {:.2} | {mean:.1} |", r.name, r.count, r.total_ns as f64 / 1e6);
        }
        let work = self.gpu_work();
        let gpu_ns: u64 = work.iter().map(|r| r.total_ns).sum();
        let _ = writeln!(
            s,
            "\nGPU: {} kernels and copies, {:.2} ms summed, busy {:.2} ms",
            work.iter().map(|r| r.count).sum::<u64>(),
            gpu_ns as f64 / 1e6,
            self.gpu_busy_ns() as f64 / 1e6
        );
        let _ = writeln!(s, "\n| kernel or copy | count | total ms | mean us | MB |\n|---|---:|---:|---:|---:|");
        for r in work.iter().take(n) {
            let mean = r.total_ns as f64 / r.count.max(1) as f64 / 1e3;
            let mb = r.bytes as f64 / 1e6;
            let _ = writeln!(s, "| {} | {} | {:.2} | {mean:.1} | {mb:.1} |", r.name, r.count, r.total_ns as f64 / 1e6);
        }
        s
    }
}

fn sorted(rows: impl Iterator<Item = Row>) -> Vec<Row> {
    let mut v: Vec<Row> = rows.collect();
    v.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then_with(|| a.name.cmp(&b.name)));
    v
}

/// The length of the union of `spans` (sorted by start).
fn union_ns(spans: &[(u64, u64)]) -> u64 {
    let mut total = 0;
    let mut cur: Option<(u64, u64)> = None;
    for &(s, e) in spans {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total + cur.map_or(0, |(s, e)| e - s)
}

fn api_name(cbid: u32) -> String {
    let mut name: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: a valid out-pointer; CUPTI returns a static string.
    let r =
        unsafe { sys::cuptiGetCallbackName(sys::CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API, cbid, &mut name) };
    if r == sys::CUptiResult::CUPTI_SUCCESS && !name.is_null() {
        // SAFETY: a NUL-terminated static string from CUPTI.
        unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
    } else {
        format!("driver call #{cbid}")
    }
}

fn copy_name(kind: u8) -> String {
    match kind {
        1 => "[copy host to device]".into(),
        2 => "[copy device to host]".into(),
        8 => "[copy device to device]".into(),
        k => format!("[copy kind {k}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_time_counts_overlapping_work_once() {
        assert_eq!(union_ns(&[]), 0);
        assert_eq!(union_ns(&[(0, 10), (5, 20), (30, 40)]), 30);
        assert_eq!(union_ns(&[(0, 10), (10, 12)]), 12);
        assert_eq!(union_ns(&[(0, 100), (10, 20), (30, 40)]), 100);
    }

    #[test]
    fn rows_sum_per_name_and_sort_by_time() {
        let t = Trace {
            records: vec![
                Record::Kernel { name: "a".into(), start: 0, end: 5 },
                Record::Kernel { name: "b".into(), start: 0, end: 20 },
                Record::Kernel { name: "a".into(), start: 10, end: 30 },
                Record::Copy { kind: 2, bytes: 64, start: 40, end: 41 },
            ],
        };
        let w = t.gpu_work();
        assert_eq!(w[0], Row { name: "a".into(), count: 2, total_ns: 25, bytes: 0 });
        assert_eq!(w[1].name, "b");
        assert_eq!(w[2], Row { name: "[copy device to host]".into(), count: 1, total_ns: 1, bytes: 64 });
        assert_eq!(t.gpu_busy_ns(), 31);
    }
}
