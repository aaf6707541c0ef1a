//! espgw: the operator's CLI, a client of espgw-control's REST port that prints what a Junos
//! operator expects (`--json` for scripts).
//!
//! espgw show security ipsec security-associations [detail] | show security ipsec statistics
//! espgw show security ike tunnel-map | show interfaces | show route | show configuration
//! espgw show status | show commits
//! espgw clear security ipsec security-associations [spi SPI] | clear security ipsec statistics
//! espgw load override FILE | espgw commit [check] [FILE] | espgw rollback N

use clap::{Parser, Subcommand};

mod ike;
mod policies;
mod show;
use comfy_table::{presets::NOTHING, Table};
use serde_json::Value;
use show::render;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "espgw operator CLI (a client of espgw-control's REST port)"
)]
struct Args {
    /// The control process's REST port.
    #[arg(long, env = "ESPGW_URL", default_value = "http://127.0.0.1:8443")]
    url: String,
    /// The file holding the API's bearer token.
    #[arg(long, env = "ESPGW_TOKEN_FILE", default_value = "/etc/espgw/api-token")]
    token_file: PathBuf,
    /// For an https URL: the CA (PEM) that signed the control's certificate, if it is not one
    /// the system trusts.
    #[arg(long, env = "ESPGW_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show state and configuration.
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Validate a configuration file and make it the running one (only its difference from
    /// the running configuration is applied).
    Commit {
        /// `[check] [FILE]`: with `check`, validate only; without FILE, the candidate.
        #[arg(num_args = 0..=2, value_name = "[check] [FILE]")]
        words: Vec<String>,
    },
    /// Load a configuration file as the candidate (Junos `load override`), to commit later.
    Load {
        #[arg(value_parser = ["override"])]
        mode: String,
        file: PathBuf,
    },
    /// Commit the N-th previous configuration again (0 is the running one).
    Rollback { n: u32 },
    /// Clear SAs or counters.
    Clear {
        #[command(subcommand)]
        what: Clear,
    },
    /// Operational requests (Junos `request security ike initiate`).
    Request {
        #[command(subcommand)]
        what: RequestCmd,
    },
}

#[derive(Subcommand)]
enum Clear {
    Security {
        #[command(subcommand)]
        what: ClearSecurity,
    },
}

#[derive(Subcommand)]
enum ClearSecurity {
    Ipsec {
        #[command(subcommand)]
        what: ClearIpsec,
    },
    Ike {
        #[command(subcommand)]
        what: ClearIke,
    },
}

#[derive(Subcommand)]
enum ClearIke {
    /// Delete IKE SAs (the peer is told) and their child SAs: `index N`, or every one.
    SecurityAssociations {
        #[arg(num_args = 0..=2, value_name = "index N")]
        words: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RequestCmd {
    Security {
        #[command(subcommand)]
        what: RequestSecurity,
    },
}

#[derive(Subcommand)]
enum RequestSecurity {
    Ike {
        #[command(subcommand)]
        what: RequestIke,
    },
}

#[derive(Subcommand)]
enum RequestIke {
    /// Negotiate a VPN now (its name in ike.vpns).
    Initiate { vpn: String },
    /// Rekey an IKE SA now: `index N`.
    Rekey {
        #[arg(value_parser = ["index"])]
        index: String,
        n: u64,
    },
}

#[derive(Subcommand)]
enum ClearIpsec {
    /// Remove SAs from the dataplane (their traffic is dropped and counted until a resync
    /// installs them again): `index N` (a tunnel's), `spi SPI`, or every SA.
    SecurityAssociations {
        #[arg(num_args = 0..=2, value_name = "index N | spi SPI")]
        words: Vec<String>,
    },
    /// Zero the counters as shown.
    Statistics,
}

#[derive(Subcommand)]
enum Security {
    Ipsec {
        #[command(subcommand)]
        what: Ipsec,
    },
    Ike {
        #[command(subcommand)]
        what: Ike,
    },
    /// The policies (policy-based VPNs), in order: what each matches and does.
    Policies,
}

#[derive(Subcommand)]
enum Ipsec {
    /// The SAs: tunnel index, algorithm, SPI, lifetime left, gateway, worker: `[index N]
    /// [detail]` (`detail`: counters too).
    SecurityAssociations {
        #[arg(num_args = 0..=3, value_name = "[index N] [detail]")]
        words: Vec<String>,
    },
    /// ESP counters and errors, as Junos prints them: `[index N]` for one tunnel's SAs.
    Statistics {
        #[arg(num_args = 0..=2, value_name = "[index N]")]
        words: Vec<String>,
    },
}

/// `[index N] [detail]`: the tunnel index asked for, and whether `detail` was.
fn index_detail(words: &[String]) -> Result<(Option<u64>, bool), String> {
    let mut index = None;
    let mut detail = false;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "detail" => detail = true,
            "index" => {
                let n = it.next().and_then(|n| n.parse().ok());
                index = Some(n.ok_or("index needs a tunnel index number")?);
            }
            other => return Err(format!("unexpected {other:?} (index N, detail)")),
        }
    }
    Ok((index, detail))
}

#[derive(Subcommand)]
enum Ike {
    /// Anchor groups and workers: load factor, tunnels, SAs, traffic.
    TunnelMap,
    /// The IKE SAs: index, state, initiator and responder SPIs, mode, remote address:
    /// `[index N] [detail]` (`detail`: child SAs and counters, and every gateway's counters).
    SecurityAssociations {
        #[arg(num_args = 0..=3, value_name = "[index N] [detail]")]
        words: Vec<String>,
    },
}

#[derive(Subcommand)]
enum Show {
    Security {
        #[command(subcommand)]
        what: Security,
    },
    /// The running configuration, keys redacted.
    Configuration,
    /// Interfaces, as configured.
    Interfaces,
    /// Static routes.
    Route,
    /// The control process and its dataplane.
    Status,
    /// Committed configurations, for `rollback N`.
    Commits,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl Client {
    fn new(args: &Args) -> Result<Client, String> {
        let token = std::fs::read_to_string(&args.token_file)
            .map_err(|e| format!("{}: {e}", args.token_file.display()))?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(60)));
        if let Some(ca) = &args.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!("{}: no certificate in it", ca.display()));
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            config = config.tls_config(tls);
        }
        let agent = config.build().new_agent();
        Ok(Client {
            agent,
            url: args.url.trim_end_matches('/').to_string(),
            token: token.lines().next().unwrap_or("").trim().to_string(),
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<String>) -> Result<Value, String> {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token);
        let r = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            ("PUT", Some(b)) => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b),
            (_, Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b),
            (_, None) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
        };
        let mut r = r.map_err(|e| format!("{url}: {e}"))?;
        let status = r.status();
        let text = r
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let msg = match (v.get("field").and_then(Value::as_str), v.get("error")) {
                (Some(f), Some(e)) => format!("{f}: {}", e.as_str().unwrap_or_default()),
                (None, Some(e)) => e.as_str().unwrap_or_default().to_string(),
                _ => v.to_string(),
            };
            return Err(format!("{status}: {msg}"));
        }
        Ok(v)
    }
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_style(NOTHING).set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

fn run(args: &Args) -> Result<(), String> {
    let c = Client::new(args)?;
    let (v, text) = match &args.cmd {
        Cmd::Show { what } => {
            let path = match what {
                Show::Security {
                    what:
                        Security::Ipsec {
                            what: Ipsec::SecurityAssociations { .. },
                        },
                } => "/v1/sas",
                Show::Security {
                    what:
                        Security::Ipsec {
                            what: Ipsec::Statistics { words },
                        },
                } => {
                    if index_detail(words)?.0.is_some() {
                        "/v1/sas"
                    } else {
                        "/v1/statistics"
                    }
                }
                Show::Security {
                    what:
                        Security::Ike {
                            what: Ike::TunnelMap,
                        },
                } => "/v1/tunnel-map",
                Show::Security {
                    what:
                        Security::Ike {
                            what: Ike::SecurityAssociations { .. },
                        },
                } => "/v1/ike",
                Show::Security {
                    what: Security::Policies,
                } => "/v1/config",
                Show::Configuration => "/v1/config",
                Show::Interfaces => "/v1/interfaces",
                Show::Route => "/v1/routes",
                Show::Status => "/v1/status",
                Show::Commits => "/v1/config/commits",
            };
            let v = c.call("GET", path, None)?;
            let text = render(what, &v)?;
            (v, text)
        }
        Cmd::Commit { words } => {
            let (check, file) = match words.as_slice() {
                [] => (false, None),
                [c] if c == "check" => (true, None),
                [file] => (false, Some(file)),
                [c, file] if c == "check" => (true, Some(file)),
                _ => return Err("usage: espgw commit [check] [FILE]".into()),
            };
            let body = match file {
                Some(f) => std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?,
                None => String::new(),
            };
            let path = if check {
                "/v1/config/check"
            } else {
                "/v1/config/commit"
            };
            let v = c.call("POST", path, Some(body))?;
            let text = if check {
                format!(
                    "configuration check succeeds ({} changes)",
                    s(&v, "changes")
                )
            } else {
                format!(
                    "commit complete ({} changes, commit {})",
                    s(&v, "changes"),
                    s(&v, "sequence")
                )
            };
            (v, text)
        }
        Cmd::Clear {
            what:
                Clear::Security {
                    what: ClearSecurity::Ipsec { what },
                },
        } => {
            match what {
                ClearIpsec::Statistics => {
                    c.call("POST", "/v1/statistics/clear", None)?;
                }
                ClearIpsec::SecurityAssociations { words } => {
                    let all = || -> Result<Vec<Value>, String> {
                        let v = c.call("GET", "/v1/sas", None)?;
                        Ok(v.as_array().cloned().unwrap_or_default())
                    };
                    let spis: Vec<String> = match words.as_slice() {
                        [k, spi] if k == "spi" => vec![spi.clone()],
                        [k, n] if k == "index" => {
                            let n: u64 = n
                                .parse()
                                .map_err(|_| format!("index {n:?}: not a number"))?;
                            let sas = all()?;
                            sas.iter()
                                .filter(|x| x["index"].as_u64() == Some(n))
                                .map(|x| s(x, "spi"))
                                .collect()
                        }
                        [] => all()?.iter().map(|x| s(x, "spi")).collect(),
                        _ => {
                            return Err("usage: espgw clear security ipsec security-associations \
                                        [index N | spi SPI]"
                                .into())
                        }
                    };
                    // An inbound and an outbound SA may share an SPI: one DELETE clears both.
                    let mut seen = std::collections::BTreeSet::new();
                    let spis: Vec<String> = spis
                        .into_iter()
                        .filter(|x| seen.insert(x.clone()))
                        .collect();
                    for spi in spis {
                        c.call("DELETE", &format!("/v1/sas/{spi}"), None)?;
                    }
                }
            }
            (Value::Null, "cleared".to_string())
        }
        Cmd::Clear {
            what:
                Clear::Security {
                    what:
                        ClearSecurity::Ike {
                            what: ClearIke::SecurityAssociations { words },
                        },
                },
        } => {
            let v = match words.as_slice() {
                [] => c.call("POST", "/v1/ike/clear", None)?,
                [k, n] if k == "index" => {
                    let n: u64 = n
                        .parse()
                        .map_err(|_| format!("index {n:?}: not a number"))?;
                    c.call(
                        "DELETE",
                        &format!("/v1/ike/security-associations/{n}"),
                        None,
                    )?
                }
                _ => {
                    return Err(
                        "usage: espgw clear security ike security-associations [index N]".into(),
                    )
                }
            };
            let text = format!("{} IKE SAs deleted", s(&v, "deleted"));
            (v, text)
        }
        Cmd::Request {
            what:
                RequestCmd::Security {
                    what:
                        RequestSecurity::Ike {
                            what: RequestIke::Initiate { vpn },
                        },
                },
        } => {
            let v = c.call("POST", &format!("/v1/ike/initiate/{vpn}"), None)?;
            (v, format!("negotiating {vpn}"))
        }
        Cmd::Request {
            what:
                RequestCmd::Security {
                    what:
                        RequestSecurity::Ike {
                            what: RequestIke::Rekey { n, .. },
                        },
                },
        } => {
            let v = c.call(
                "POST",
                &format!("/v1/ike/security-associations/{n}/rekey"),
                None,
            )?;
            (v, format!("rekeying IKE SA {n}"))
        }
        Cmd::Load { file, .. } => {
            let body =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            c.call("PUT", "/v1/config/candidate", Some(body))?;
            (
                Value::Null,
                "load complete (candidate; `espgw commit` to apply it)".to_string(),
            )
        }
        Cmd::Rollback { n } => {
            let v = c.call("POST", &format!("/v1/config/rollback/{n}"), None)?;
            let text = format!(
                "rollback {n} complete ({} changes, commit {})",
                s(&v, "changes"),
                s(&v, "sequence")
            );
            (v, text)
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        println!("{text}");
    }
    Ok(())
}
