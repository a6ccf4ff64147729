//! The stub's command line. The launcher (the jail, or a test) places every descriptor;
//! the stub only learns their numbers:
//!
//! ```text
//! plugjail-stub (--channel-socket N | --channel IN,OUT) --plugin-fd N
//!               --max-message BYTES [--output-fd N] [--watch-fd N] [--shm-fd N]
//! ```

use std::ffi::CStr;
use std::os::fd::RawFd;

use plugjail_protocol::consts::MIN_MAX_MESSAGE;

/// Where the channel to the host comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `--channel-socket N`: received over this socket once the plugin is loaded (the
    /// switch to the serve phase, which the jail's init watches; `jail/handover.rs`).
    Socket(RawFd),
    /// `--channel IN,OUT`: held from the start (tests and development outside a jail).
    Fds { input: RawFd, output: RawFd },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub channel: Channel,
    /// The sealed memfd holding the plugin.
    pub plugin_fd: RawFd,
    /// Read end of a pipe whose write end is the stub's fd 1 and 2: the plugin's output,
    /// forwarded as LOG frames.
    pub output_fd: Option<RawFd>,
    /// The supervisor's watch page (a memfd): the stub marks each call in it so the
    /// supervisor can enforce call_time and idle_time (`plugin_mode::watch`).
    pub watch_fd: Option<RawFd>,
    /// The shared-memory region (a sealed memfd from the host): calls come through it
    /// after HELLO (docs/protocol.md, "Shared-memory calls").
    pub shm_fd: Option<RawFd>,
    /// The profile's `limits.max_message`.
    pub max_message: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown argument {0:?}")]
    Unknown(String),
    #[error("{flag} needs a value")]
    Missing { flag: &'static str },
    #[error("{flag}: {value:?} is not {what}")]
    Bad {
        flag: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("--{flag} is required")]
    Required { flag: &'static str },
    #[error("give exactly one of --channel-socket and --channel")]
    ChannelChoice,
    #[error("descriptor {fd} is used twice, or is 0, 1 or 2 (reserved for stdio)")]
    FdClash { fd: RawFd },
}

/// What to do: serve, or print the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve(Args),
    Version,
}

fn fd(flag: &'static str, v: &str) -> Result<RawFd, ArgsError> {
    v.parse::<RawFd>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ArgsError::Bad {
            flag,
            value: v.to_string(),
            what: "a descriptor number",
        })
}

/// Parses the arguments after argv[0].
pub fn parse<'a>(args: impl IntoIterator<Item = &'a CStr>) -> Result<Command, ArgsError> {
    let mut it = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    let (mut channel, mut socket, mut plugin, mut output, mut max) = (None, None, None, None, None);
    let (mut watch, mut shm) = (None, None);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &'static str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(ArgsError::Missing { flag: name })
        };
        match flag.as_str() {
            "--version" | "-V" => return Ok(Command::Version),
            "--channel" => {
                let v = value("--channel")?;
                let (a, b) = v.split_once(',').ok_or_else(|| ArgsError::Bad {
                    flag: "--channel",
                    value: v.clone(),
                    what: "IN,OUT descriptor numbers",
                })?;
                channel = Some((fd("--channel", a)?, fd("--channel", b)?));
            }
            "--plugin-fd" => plugin = Some(fd("--plugin-fd", &value("--plugin-fd")?)?),
            "--channel-socket" => {
                socket = Some(fd("--channel-socket", &value("--channel-socket")?)?)
            }
            "--output-fd" => output = Some(fd("--output-fd", &value("--output-fd")?)?),
            "--watch-fd" => watch = Some(fd("--watch-fd", &value("--watch-fd")?)?),
            "--shm-fd" => shm = Some(fd("--shm-fd", &value("--shm-fd")?)?),
            "--max-message" => {
                let v = value("--max-message")?;
                max = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|n| *n >= MIN_MAX_MESSAGE)
                        .ok_or(ArgsError::Bad {
                            flag: "--max-message",
                            value: v,
                            what: "a byte count from 4096 to 4294967295",
                        })?,
                );
            }
            _ => return Err(ArgsError::Unknown(arg)),
        }
    }
    let channel = match (channel, socket) {
        (Some((input, output)), None) => Channel::Fds { input, output },
        (None, Some(fd)) => Channel::Socket(fd),
        _ => return Err(ArgsError::ChannelChoice),
    };
    let plugin_fd = plugin.ok_or(ArgsError::Required { flag: "plugin-fd" })?;
    let max_message = max.ok_or(ArgsError::Required {
        flag: "max-message",
    })?;
    let mut all = match channel {
        Channel::Fds { input, output } => vec![input, output],
        Channel::Socket(fd) => vec![fd],
    };
    all.push(plugin_fd);
    all.extend(output);
    all.extend(watch);
    all.extend(shm);
    for (i, &f) in all.iter().enumerate() {
        if f <= 2 || all[..i].contains(&f) {
            return Err(ArgsError::FdClash { fd: f });
        }
    }
    Ok(Command::Serve(Args {
        channel,
        plugin_fd,
        output_fd: output,
        watch_fd: watch,
        shm_fd: shm,
        max_message,
    }))
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    fn run(args: &[&str]) -> Result<Command, ArgsError> {
        let owned: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
        parse(owned.iter().map(|c| c.as_c_str()))
    }

    #[test]
    fn full_command_line() {
        let c = run(&[
            "--channel-socket",
            "6",
            "--plugin-fd=5",
            "--output-fd",
            "7",
            "--watch-fd",
            "8",
            "--max-message",
            "1048576",
        ])
        .unwrap();
        assert_eq!(
            c,
            Command::Serve(Args {
                channel: Channel::Socket(6),
                plugin_fd: 5,
                output_fd: Some(7),
                watch_fd: Some(8),
                shm_fd: None,
                max_message: 1 << 20,
            })
        );
    }

    #[test]
    fn mistakes_are_named() {
        let base = [
            "--channel",
            "3,4",
            "--plugin-fd",
            "5",
            "--max-message",
            "4096",
        ];
        assert!(matches!(
            run(&base).unwrap(),
            Command::Serve(Args {
                channel: Channel::Fds {
                    input: 3,
                    output: 4
                },
                ..
            })
        ));
        let mut both = base.to_vec();
        both.extend(["--channel-socket", "6"]);
        assert_eq!(run(&both).unwrap_err(), ArgsError::ChannelChoice);
        let mut clash = base.to_vec();
        clash.extend(["--output-fd", "4"]);
        assert_eq!(run(&clash).unwrap_err(), ArgsError::FdClash { fd: 4 });
        let mut stdio = base.to_vec();
        stdio[1] = "0,4";
        assert_eq!(run(&stdio).unwrap_err(), ArgsError::FdClash { fd: 0 });
        assert!(run(&["--max-message", "12"]).is_err());
        assert_eq!(
            run(&["--bogus"]).unwrap_err(),
            ArgsError::Unknown("--bogus".into())
        );
        assert_eq!(run(&["--version"]).unwrap(), Command::Version);
    }
}
