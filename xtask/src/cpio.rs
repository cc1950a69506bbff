//! A writer for the "newc" cpio format, the one the kernel unpacks as an
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Each entry is a 110-byte ASCII header ("070701" and thirteen 8-digit hex
//! fields), the NUL-terminated name padded to 4 bytes, then the data padded to
//! 4 bytes. The archive ends with an entry named `TRAILER!!!`. Parents must
//! come before their children: the kernel does not create directories.

use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes a newc archive to `W`, one entry at a time.
pub struct Writer<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> Writer<W> {
    /// A new archive written to `out`.
    pub fn new(out: W) -> Self {
        Writer {
            out,
            ino: 1,
            written: 0,
        }
    }

    /// A directory with permission bits `perm`.
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | perm, 2, (0, 0), &[])
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | perm, 1, (0, 0), data)
    }

    /// A symbolic link to `target`; its data is the target path.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// A character device node.
    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, S_IFCHR | perm, 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {} bytes is too large for newc", data.len()),
            )
        })?;
        let ino = if mode == 0 { 0 } else { self.ino };
        self.ino += 1;
        let namesize = name.len() + 1;
        // ino mode uid gid nlink mtime filesize devmajor devminor
        // rdevmajor rdevminor namesize check
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
            0, 0, 0, 0, 0, rdev.0, rdev.1, 0
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_end_with_the_trailer() {
        let mut w = Writer::new(Vec::new());
        w.dir("bin", 0o755).unwrap();
        w.file("bin/x", 0o644, b"hello").unwrap();
        w.symlink("sh", "busybox").unwrap();
        w.char_dev("console", 0o600, 5, 1).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        // The first header: ino 1, a directory 0755, namesize 4 ("bin\0").
        assert_eq!(&out[6..22], b"00000001000041ed");
        assert_eq!(&out[94..102], b"00000004");
        // name "bin\0" right after the 110-byte header, then 2 bytes of padding
        assert_eq!(&out[110..114], b"bin\0");
        let second = &out[116..];
        assert!(second.starts_with(b"070701"));
        // filesize field of bin/x is 5, and its data follows the padded name
        assert_eq!(&second[54..62], b"00000005");
        let data_at = 110 + "bin/x\0".len();
        let data_at = data_at + (4 - data_at % 4) % 4;
        assert_eq!(&second[data_at..data_at + 5], b"hello");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("TRAILER!!!"));
        // the console's rdev is 5:1
        let c = text.find("console").unwrap() - 110;
        assert_eq!(&out[c + 78..c + 94], b"0000000500000001");
    }
}
