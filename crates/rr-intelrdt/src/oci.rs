//! The OCI `linux.intelRdt` object: turning its fields into one schemata.
//!
//! runc joins the non-empty `l3CacheSchema`, `memBwSchema` and `schemata`
//! entries, in that order, each followed by a newline, and writes the
//! result in one write. The kernel refuses a domain set twice in one write
//! ("Duplicate domain"), so a config whose `schemata` restates a domain of
//! `l3CacheSchema` fails there, although the spec says `schemata` overrides
//! the other two. rr merges instead: a later field's value for a domain
//! replaces the earlier one, and `MB` lines in `l3CacheSchema` are dropped
//! when `memBwSchema` is set (a rule of the runtime spec).

use oci_spec::runtime::LinuxIntelRdt;

use crate::capabilities::Capabilities;
use crate::closid::validate_clos_id;
use crate::error::{Error, Result};
use crate::group::GroupName;
use crate::schemata::Schemata;

/// The fields of `linux.intelRdt`, with empty strings taken as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntelRdtConfig {
    /// `closID`.
    pub clos_id: Option<String>,
    /// `l3CacheSchema` (one or more lines).
    pub l3_cache_schema: Option<String>,
    /// `memBwSchema` (one `MB:` line).
    pub mem_bw_schema: Option<String>,
    /// `schemata`: one schemata line per entry.
    pub schemata: Vec<String>,
    /// `enableMonitoring`, or either of the deprecated `enableCMT` and
    /// `enableMBM`: a monitoring group for the container.
    pub enable_monitoring: bool,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.trim().is_empty()).cloned()
}

impl From<&LinuxIntelRdt> for IntelRdtConfig {
    fn from(rdt: &LinuxIntelRdt) -> IntelRdtConfig {
        // enableCMT and enableMBM predate enableMonitoring (runtime-spec
        // 1.3) and asked for the same thing: per-container counters.
        #[allow(deprecated)]
        let legacy = rdt.enable_cmt().unwrap_or(false) || rdt.enable_mbm().unwrap_or(false);
        IntelRdtConfig {
            clos_id: non_empty(rdt.clos_id()),
            l3_cache_schema: non_empty(rdt.l3_cache_schema()),
            mem_bw_schema: non_empty(rdt.mem_bw_schema()),
            schemata: rdt
                .schemata()
                .iter()
                .flatten()
                .filter(|l| !l.trim().is_empty())
                .cloned()
                .collect(),
            enable_monitoring: rdt.enable_monitoring().unwrap_or(false) || legacy,
        }
    }
}

fn field_error(field: &'static str, e: Error) -> Error {
    Error::OciField {
        field,
        reason: e.to_string(),
    }
}

impl IntelRdtConfig {
    /// The group to use: `closID` when set, else the container id.
    pub fn group_name<'a>(&'a self, container_id: &'a str) -> GroupName<'a> {
        match &self.clos_id {
            Some(id) => GroupName::ClosId(id),
            None => GroupName::ContainerId(container_id),
        }
    }

    /// Builds the schemata to write from `l3CacheSchema`, `memBwSchema`
    /// and `schemata`, later fields overriding earlier ones domain by
    /// domain; `None` when all three are empty (nothing is written then).
    /// A syntax error is reported with the field it is in.
    pub fn build_schemata(&self) -> Result<Option<Schemata>> {
        let mut merged = match &self.l3_cache_schema {
            Some(text) => Schemata::parse(text).map_err(|e| field_error("l3CacheSchema", e))?,
            None => Schemata::default(),
        };
        if let Some(text) = &self.mem_bw_schema {
            let mb = Schemata::parse(text).map_err(|e| field_error("memBwSchema", e))?;
            if mb.lines().len() != 1 || mb.resources() != ["MB"] {
                return Err(Error::OciField {
                    field: "memBwSchema",
                    reason: format!("must be one line starting with \"MB:\", got {text:?}"),
                });
            }
            merged.remove_resource("MB");
            merged.merge_from(&mb);
        }
        if !self.schemata.is_empty() {
            let list = Schemata::parse(&self.schemata.join("\n"))
                .map_err(|e| field_error("schemata", e))?;
            merged.merge_from(&list);
        }
        Ok((!merged.is_empty()).then_some(merged))
    }

    /// Checks the whole `linux.intelRdt` object against the host before
    /// anything is created: the closID (if any), the merged schemata
    /// against `caps` and the root group's schemata `root`, and that the
    /// host has monitoring when it is enabled. Returns the schemata to
    /// write, if any.
    pub fn validate(&self, caps: &Capabilities, root: &Schemata) -> Result<Option<Schemata>> {
        if let Some(id) = &self.clos_id {
            validate_clos_id(id)?;
        }
        let schemata = self.build_schemata()?;
        if let Some(s) = &schemata {
            caps.validate(s, root)?;
        }
        if self.enable_monitoring && caps.monitoring.is_none() {
            return Err(Error::MonitoringUnsupported);
        }
        Ok(schemata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(l3: Option<&str>, mb: Option<&str>, list: &[&str]) -> IntelRdtConfig {
        IntelRdtConfig {
            l3_cache_schema: l3.map(str::to_string),
            mem_bw_schema: mb.map(str::to_string),
            schemata: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_set_means_nothing_written() {
        assert_eq!(cfg(None, None, &[]).build_schemata().unwrap(), None);
    }

    #[test]
    fn fields_are_joined_in_runc_order() {
        let s = cfg(Some("L3:0=7f0;1=1f"), Some("MB:0=20;1=70"), &["L2:0=f;1=f"])
            .build_schemata()
            .unwrap()
            .unwrap();
        assert_eq!(s.to_string(), "L3:0=7f0;1=1f\nMB:0=20;1=70\nL2:0=f;1=f\n");
    }

    #[test]
    fn later_fields_override_per_domain() {
        // schemata restates L3 domain 0 with another mask and repeats MB
        // unchanged: one value per domain reaches the kernel.
        let s = cfg(
            Some("L3:0=ff;1=ff"),
            Some("MB:0=50"),
            &["L3:0=f", "MB:0=50"],
        )
        .build_schemata()
        .unwrap()
        .unwrap();
        assert_eq!(s.to_string(), "L3:0=f;1=ff\nMB:0=50\n");
    }

    #[test]
    fn mb_lines_of_l3_cache_schema_give_way_to_mem_bw_schema() {
        let s = cfg(Some("L3:0=ff\nMB:0=20;1=20"), Some("MB:0=70"), &[])
            .build_schemata()
            .unwrap()
            .unwrap();
        assert_eq!(s.to_string(), "L3:0=ff\nMB:0=70\n");
        // Without memBwSchema they stay.
        let s = cfg(Some("L3:0=ff\nMB:0=20"), None, &[])
            .build_schemata()
            .unwrap()
            .unwrap();
        assert_eq!(s.to_string(), "L3:0=ff\nMB:0=20\n");
    }

    #[test]
    fn errors_name_the_field() {
        let e = cfg(Some("L3:0=zz"), None, &[])
            .build_schemata()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.intelRdt.l3CacheSchema: schemata line 1: L3 domain 0 value \"zz\" is not a hexadecimal cache bit mask"
        );
        let e = cfg(None, Some("L3:0=ff"), &[])
            .build_schemata()
            .unwrap_err();
        assert!(matches!(
            e,
            Error::OciField {
                field: "memBwSchema",
                ..
            }
        ));
        let e = cfg(None, Some("MB:0=10\nMB:1=10"), &[])
            .build_schemata()
            .unwrap_err();
        assert!(matches!(
            e,
            Error::OciField {
                field: "memBwSchema",
                ..
            }
        ));
        let e = cfg(None, None, &["L3:0=f", "L3:0=f0"])
            .build_schemata()
            .unwrap_err();
        assert!(matches!(
            e,
            Error::OciField {
                field: "schemata",
                ..
            }
        ));
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn from_oci_spec() {
        let json = r#"{"closID":"guaranteed_group","l3CacheSchema":"L3:0=7f0;1=1f","memBwSchema":"",
                       "schemata":["L2:0=f","  "],"enableMonitoring":true}"#;
        let rdt: LinuxIntelRdt = serde_json::from_str(json).unwrap();
        let c = IntelRdtConfig::from(&rdt);
        assert_eq!(c.clos_id.as_deref(), Some("guaranteed_group"));
        assert_eq!(c.mem_bw_schema, None);
        assert_eq!(c.schemata, vec!["L2:0=f".to_string()]);
        assert!(c.enable_monitoring);
        assert_eq!(c.group_name("ctr"), GroupName::ClosId("guaranteed_group"));
        let c = IntelRdtConfig::default();
        assert_eq!(c.group_name("ctr"), GroupName::ContainerId("ctr"));
    }

    #[test]
    #[allow(deprecated)]
    fn legacy_monitoring_flags_enable_monitoring() {
        let mut rdt = LinuxIntelRdt::default();
        assert!(!IntelRdtConfig::from(&rdt).enable_monitoring);
        rdt.set_enable_mbm(Some(true));
        assert!(IntelRdtConfig::from(&rdt).enable_monitoring);
        rdt.set_enable_mbm(None);
        rdt.set_enable_cmt(Some(true));
        assert!(IntelRdtConfig::from(&rdt).enable_monitoring);
    }
}
