//! URLs in messages: an RPC or webhook URL may carry an API key in its path or a password in
//! its user part; what is shown or logged of one goes through here.

/// The host of a URL, for messages (never its path or query, which may hold an API key).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    host.rsplit('@').next().unwrap_or(host).to_string()
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// True when a URL carries a password (which must come from env, not the file).
pub fn url_has_password(url: &str) -> bool {
    redact_url(url) != url
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_hides_paths_keys_and_credentials() {
        assert_eq!(
            host_of("https://bsc.example.com/v1/SECRETKEY?x=1"),
            "bsc.example.com"
        );
        assert_eq!(host_of("http://user:pw@127.0.0.1:8545"), "127.0.0.1:8545");
        assert_eq!(host_of("127.0.0.1:8545/abc"), "127.0.0.1:8545");
    }
}
