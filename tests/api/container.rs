//! No Docker engine runs where the tests run, so the container files are checked as data:
//! compose gives the app only variables its configuration reads, declares every service the
//! app needs with a health check the app waits for, and the image runs as a non-root user with
//! a health check of its own.

use std::collections::BTreeSet;

use serde_yaml::Value;

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).expect(file)
}

#[test]
fn compose_gives_the_app_only_known_variables_and_healthy_dependencies() {
    let compose: Value = serde_yaml::from_str(&read("compose.yaml")).expect("compose.yaml is YAML");
    let services = compose["services"].as_mapping().expect("services");
    let app = &compose["services"]["product-api"];
    let known: BTreeSet<String> = product_api::config::variables().into_iter().collect();

    let env = app["environment"]
        .as_mapping()
        .expect("product-api environment is a map");
    for key in env.keys() {
        let key = key.as_str().expect("variable name");
        // RUST_LOG is read by tracing's filter, not the config struct.
        assert!(
            known.contains(key) || key == "RUST_LOG",
            "{key} is not a configuration variable"
        );
    }
    for needed in ["DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS"] {
        assert!(
            env.keys().any(|k| k.as_str() == Some(needed)),
            "{needed} is given to the app"
        );
    }
    for dependency in ["postgres", "redis", "kafka"] {
        assert!(
            services.keys().any(|k| k.as_str() == Some(dependency)),
            "{dependency} is declared"
        );
        assert!(
            compose["services"][dependency]["healthcheck"]["test"].is_sequence(),
            "{dependency} has a health check"
        );
        assert_eq!(
            app["depends_on"][dependency]["condition"].as_str(),
            Some("service_healthy"),
            "the app waits for {dependency}"
        );
    }
    let check = app["healthcheck"]["test"]
        .as_sequence()
        .expect("app health check");
    assert!(
        check.iter().any(|v| v.as_str() == Some("healthcheck")),
        "uses the binary itself"
    );
    assert!(
        compose["volumes"]
            .as_mapping()
            .is_some_and(|v| !v.is_empty()),
        "named volumes"
    );
}

/// The `scaled` profile runs three instances of the app's own definition behind HAProxy with
/// the balancer configuration the cluster tests use, pointed at those three.
#[test]
fn the_scaled_profile_puts_three_instances_behind_the_tested_balancer() {
    let compose: Value = serde_yaml::from_str(&read("compose.yaml")).expect("compose.yaml is YAML");
    let services = &compose["services"];
    let app = &services["product-api"];
    for name in ["app1", "app2", "app3"] {
        let instance = &services[name];
        assert_eq!(instance["profiles"][0].as_str(), Some("scaled"), "{name}");
        assert_eq!(
            instance["environment"], app["environment"],
            "{name}: the app's settings"
        );
        assert_eq!(instance["depends_on"], app["depends_on"], "{name}");
        assert!(
            instance.get("volumes").is_none(),
            "{name} keeps nothing of its own"
        );
    }
    let lb = &services["lb"];
    assert_eq!(lb["profiles"][0].as_str(), Some("scaled"));
    let mounts = lb["volumes"].as_sequence().expect("lb volumes");
    assert!(
        mounts.iter().any(|m| m
            .as_str()
            .is_some_and(|m| m.starts_with("./deploy/haproxy.cfg:"))),
        "the balancer runs deploy/haproxy.cfg"
    );
    let config = read("deploy/haproxy.cfg");
    for (i, name) in ["app1", "app2", "app3"].iter().enumerate() {
        let var = format!("APP{}_ADDR", i + 1);
        assert!(config.contains(&format!("server {name} \"${{{var}}}\" check")));
        let port = app["environment"]["PORT"].as_str().expect("PORT");
        assert_eq!(
            lb["environment"][var.as_str()].as_str(),
            Some(format!("{name}:{port}").as_str())
        );
    }
    assert!(
        config.contains("uri /health/ready"),
        "health-checked on readiness"
    );
}

#[test]
fn the_image_is_multi_stage_non_root_and_checks_its_health() {
    let dockerfile = read("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 3, "multi-stage with a cached dependency layer");
    assert!(
        dockerfile.contains("cargo chef cook"),
        "dependencies cached apart from the source"
    );
    assert!(dockerfile.contains("EXPOSE 3001"));
    // The HEALTHCHECK runs the binary's own `healthcheck` (tested in cli.rs), so the image
    // needs no curl.
    let healthcheck = dockerfile
        .split("HEALTHCHECK")
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| l.trim_start().starts_with("CMD")))
        .expect("a HEALTHCHECK with a CMD");
    assert_eq!(
        healthcheck.trim(),
        r#"CMD ["/usr/local/bin/product-api", "healthcheck"]"#
    );
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "runs as {user}"
    );
    let ignore = read(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "*"),
        "an allowlist: everything out by default"
    );
    // The workspace's members are what a release build compiles: each must be sent.
    for member in workspace_members(&read("Cargo.toml"))
        .iter()
        .filter(|m| *m != ".")
    {
        assert!(
            ignore.lines().any(|l| l.trim() == format!("!{member}")),
            "workspace member {member} is in the build context"
        );
    }
    for excluded in ["target", ".git", "data"] {
        let listed = |l: &str| l == format!("/{excluded}") || l == format!("**/{excluded}");
        assert!(
            ignore.lines().any(|l| listed(l.trim())),
            "{excluded} stays out of the context"
        );
    }
}

/// The `members` of the workspace manifest, read without a TOML parser (one line, as written).
fn workspace_members(manifest: &str) -> Vec<String> {
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("a members line");
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}
