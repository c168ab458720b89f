//! macOS: no inotify, and kqueue reports no opens or closes of a device. The pty's clients are
//! counted instead, every [`POLL`]: the descriptors of every process (this one included) whose
//! vnode is the pty's path, from libproc (`proc_listallpids`, `proc_pidinfo` PROC_PIDLISTFDS,
//! `proc_pidfdinfo` PROC_PIDFDVNODEPATHINFO), less the board's own slave descriptor. A change
//! of the count is reported as that many opens or closes. An open and close between two polls
//! goes unseen, which only a tool that opens the port for less than [`POLL`] does.
//!
//! Compiled for aarch64-apple-darwin in CI; not run there (no macOS machine).

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::Change;

/// How often the clients are counted.
const POLL: Duration = Duration::from_millis(50);
/// `PROC_PIDFDVNODEPATHINFO` of <sys/proc_info.h> (not in the libc crate).
const PROC_PIDFDVNODEPATHINFO: libc::c_int = 2;

/// `struct proc_fileinfo` of <sys/proc_info.h>.
#[repr(C)]
struct ProcFileInfo {
    fi_openflags: u32,
    fi_status: u32,
    fi_offset: libc::off_t,
    fi_type: i32,
    fi_guardflags: u32,
}

/// `struct vnode_fdinfowithpath` of <sys/proc_info.h>.
#[repr(C)]
struct VnodeFdInfoWithPath {
    pfi: ProcFileInfo,
    pvip: libc::vnode_info_path,
}

// The kernel fills exactly PROC_PIDFDVNODEPATHINFO_SIZE bytes or none: the layouts above must
// be the header's (proc_fileinfo 24 bytes, vnode_info_path 152 + MAXPATHLEN), checked where
// this compiles, since it does not run here.
const _: () = assert!(size_of::<ProcFileInfo>() == 24);
const _: () = assert!(size_of::<libc::vnode_info_path>() == 152 + libc::MAXPATHLEN as usize);
const _: () = assert!(size_of::<VnodeFdInfoWithPath>() == 1200);

pub(super) struct Watch {
    path: PathBuf,
    /// The clients counted at the last look.
    clients: Mutex<usize>,
}

impl Watch {
    pub(super) fn start(path: &Path) -> io::Result<Watch> {
        let path = std::fs::canonicalize(path)?;
        let clients = clients_of(&path);
        Ok(Watch {
            path,
            clients: Mutex::new(clients),
        })
    }

    /// Resolves when it is time to count again.
    pub(super) async fn changed(&self) -> io::Result<()> {
        tokio::time::sleep(POLL).await;
        Ok(())
    }

    /// Counts the clients; reports the difference to the last count as opens or closes.
    pub(super) fn take(&self, mut each: impl FnMut(Change)) {
        let now = clients_of(&self.path);
        let Ok(mut last) = self.clients.lock() else {
            return;
        };
        for _ in now..*last {
            each(Change::Close);
        }
        for _ in *last..now {
            each(Change::Open);
        }
        *last = now;
    }
}

/// Descriptors open on `path` in every process, less the board's own slave.
fn clients_of(path: &Path) -> usize {
    let mut count: usize = 0;
    for pid in all_pids() {
        for fd in vnode_fds(pid) {
            if vnode_path(pid, fd).is_some_and(|open| open == path) {
                count += 1;
            }
        }
    }
    count.saturating_sub(1)
}

fn all_pids() -> Vec<libc::pid_t> {
    // SAFETY: a null buffer asks for the number of processes.
    let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    if n <= 0 {
        return Vec::new();
    }
    // Room for processes started meanwhile.
    let mut pids = vec![0 as libc::pid_t; n as usize + 64];
    let size = (pids.len() * size_of::<libc::pid_t>()) as libc::c_int;
    // SAFETY: `pids` is valid for `size` bytes of writes.
    let n = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), size) };
    pids.truncate(n.max(0) as usize);
    pids
}

fn vnode_fds(pid: libc::pid_t) -> Vec<RawFd> {
    // SAFETY: a null buffer asks for the size of the list.
    let size =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) };
    if size <= 0 {
        return Vec::new();
    }
    let entry = size_of::<libc::proc_fdinfo>();
    let mut fds: Vec<libc::proc_fdinfo> = (0..size as usize / entry + 16)
        .map(|_| libc::proc_fdinfo {
            proc_fd: 0,
            proc_fdtype: 0,
        })
        .collect();
    let bytes = (fds.len() * entry) as libc::c_int;
    // SAFETY: `fds` is valid for `bytes` bytes of writes.
    let size = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDLISTFDS,
            0,
            fds.as_mut_ptr().cast(),
            bytes,
        )
    };
    fds.truncate(size.max(0) as usize / entry);
    fds.into_iter()
        .filter(|fd| fd.proc_fdtype == libc::PROX_FDTYPE_VNODE as u32)
        .map(|fd| fd.proc_fd)
        .collect()
}

fn vnode_path(pid: libc::pid_t, fd: RawFd) -> Option<PathBuf> {
    let mut info = std::mem::MaybeUninit::<VnodeFdInfoWithPath>::zeroed();
    let size = size_of::<VnodeFdInfoWithPath>() as libc::c_int;
    // SAFETY: `info` is valid for `size` bytes of writes; it is read only if all were written.
    let written = unsafe {
        libc::proc_pidfdinfo(
            pid,
            fd,
            PROC_PIDFDVNODEPATHINFO,
            info.as_mut_ptr().cast(),
            size,
        )
    };
    if written != size {
        return None;
    }
    // SAFETY: the call filled the whole struct.
    let info = unsafe { info.assume_init() };
    // SAFETY: `vip_path` is MAXPATHLEN chars, NUL-terminated by the kernel.
    let path = unsafe { CStr::from_ptr(info.pvip.vip_path.as_ptr().cast()) };
    Some(PathBuf::from(path.to_str().ok()?))
}

/// The baud rate the client set on its side of the port: the speed of the pty's termios.
pub(super) fn baud(master: RawFd) -> Option<u32> {
    let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills a `termios` on success; it is read only then.
    if unsafe { libc::tcgetattr(master, termios.as_mut_ptr()) } == -1 {
        return None;
    }
    // SAFETY: tcgetattr succeeded and initialised it; on macOS the speed is the number.
    let speed = unsafe { libc::cfgetospeed(termios.as_ptr()) };
    u32::try_from(speed).ok().filter(|&speed| speed > 0)
}
