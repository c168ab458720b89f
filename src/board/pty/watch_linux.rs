//! Linux: the pty's opens and closes from inotify (IN_OPEN, IN_CLOSE on its path), in the
//! order the kernel queued them, whoever opened it, this process included; the baud rate a
//! client set from TCGETS2 on the master.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd, RawFd};
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;

use super::{Change, register};

pub(super) struct Watch(AsyncFd<InotifyFd>);

struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Watch {
    /// Watches `path` from now on: no open or close after this returns is missed.
    pub(super) fn start(path: &Path) -> io::Result<Watch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(path, AddWatchFlags::IN_OPEN | AddWatchFlags::IN_CLOSE)?;
        Ok(Watch(register(InotifyFd(inotify))?))
    }

    /// Resolves when changes may be queued.
    pub(super) async fn changed(&self) -> io::Result<()> {
        let mut guard = self.0.readable().await?;
        // Cleared first: an event queued while they are read marks it readable again.
        guard.clear_ready();
        Ok(())
    }

    /// The changes queued so far, in order. Non-blocking.
    pub(super) fn take(&self, mut each: impl FnMut(Change)) {
        // An empty queue is EAGAIN.
        while let Ok(events) = self.0.get_ref().0.read_events() {
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_OPEN) {
                    each(Change::Open);
                }
                if event.mask.intersects(AddWatchFlags::IN_CLOSE) {
                    each(Change::Close);
                }
            }
        }
    }
}

/// The baud rate the client set on its side of the port (TCGETS2 on the master shows it).
pub(super) fn baud(master: RawFd) -> Option<u32> {
    let mut termios = std::mem::MaybeUninit::<libc::termios2>::uninit();
    // SAFETY: TCGETS2 fills a `termios2` on success; it is read only then.
    let result = unsafe { libc::ioctl(master, libc::TCGETS2, termios.as_mut_ptr()) };
    if result == -1 {
        return None;
    }
    // SAFETY: the ioctl succeeded and initialised it.
    Some(unsafe { termios.assume_init() }.c_ospeed)
}
