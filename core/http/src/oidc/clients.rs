//! The registered OAuth clients: the official ownCloud apps (public ids and secrets, as in oCIS)
//! and Hearth's own web UI.

/// A registered client.
pub(crate) struct Client {
    pub id: &'static str,
    /// `None` = a public client (must use PKCE, no secret).
    pub secret: Option<&'static str>,
    /// Exact redirect URIs (`{base}` is replaced by the server's base URL).
    pub redirects: &'static [&'static str],
    /// Native app on loopback: `http://127.0.0.1:<any port>` / `http://localhost:<any port>` (RFC 8252 §7.3).
    pub loopback: bool,
}

/// Every client, the desktop first.
pub(crate) const CLIENTS: &[Client] = &[
    Client {
        id: "xdXOt13JKxym1B1QcEncf2XDkLAexMBFwiT9j6EfhhHFJhs2KM9jbjTmf8JBXE69",
        secret: Some("UBntmLjC2yYCeHwsyj73Uwo9TAaecAetRwMw0xYcvNL9yRdLSUi0hUAHfvCHFeFh"),
        redirects: &[],
        loopback: true,
    },
    Client {
        id: "e4rAsNUSIUs0lF4nbv9FmCeUkTlV9GdgTLDH1b5uie7syb90SzEVrbN7HIpmWJeD",
        secret: Some("dInFYGV33xKzhbRmpqQltYNdfLdJIfJ9L5ISoKhNoT9qZftpdWSP71VrpGR9pmoD"),
        redirects: &["oc://android.owncloud.com"],
        loopback: false,
    },
    Client {
        id: "mxd5OQDk6es5LzOzRvidJNfXLUZS2oN3oUFeXPP8LpPrhx3UroJFduGEYIBOxkY1",
        secret: Some("KFeFWWEZO9TkisIQzR3fo7hfiMXlOpaqP8CFuTbSHzV1TUuGECglPxpiVKJfOXIx"),
        redirects: &["oc://ios.owncloud.com", "oc.ios://ios.owncloud.com"],
        loopback: false,
    },
    Client {
        id: "web",
        secret: None,
        redirects: &[
            "{base}/",
            "{base}/oidc-callback.html",
            "{base}/oidc-silent-redirect.html",
        ],
        loopback: false,
    },
];

/// The client with this id.
pub(crate) fn find(id: &str) -> Option<&'static Client> {
    CLIENTS.iter().find(|c| c.id == id)
}

/// Every client id (the audiences our access tokens may carry).
pub(crate) fn ids() -> Vec<&'static str> {
    CLIENTS.iter().map(|c| c.id).collect()
}

impl Client {
    /// Whether `uri` is one of this client's redirect URIs.
    pub(crate) fn redirect_ok(&self, uri: &str, base: &str) -> bool {
        if self.loopback && is_loopback(uri) {
            return true;
        }
        self.redirects
            .iter()
            .any(|r| r.replace("{base}", base) == uri)
    }

    /// Checks a presented secret (constant time); public clients accept none.
    pub(crate) fn secret_ok(&self, presented: Option<&str>) -> bool {
        match (self.secret, presented) {
            (None, _) => true,
            (Some(s), Some(p)) => constant_eq(s.as_bytes(), p.as_bytes()),
            (Some(_), None) => false,
        }
    }
}

/// `http://127.0.0.1[:port][/path]` or `http://localhost[:port][/path]`, no query or fragment.
fn is_loopback(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    if rest.contains(['?', '#', '@']) {
        return false;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    port_ok && (host == "127.0.0.1" || host == "localhost" || host == "[::1]")
}

/// Byte equality without an early exit.
pub(crate) fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects() {
        let desktop = &CLIENTS[0];
        assert!(desktop.redirect_ok("http://127.0.0.1:43210", "https://h"));
        assert!(desktop.redirect_ok("http://localhost:1/", "https://h"));
        assert!(!desktop.redirect_ok("http://127.0.0.1.evil.com:1", "https://h"));
        assert!(!desktop.redirect_ok("http://evil@127.0.0.1:1", "https://h"));
        assert!(!desktop.redirect_ok("https://example.com", "https://h"));
        let web = find("web").unwrap();
        assert!(web.redirect_ok("https://h/oidc-callback.html", "https://h"));
        assert!(!web.redirect_ok("https://h/oidc-callback.html?x", "https://h"));
        assert!(!web.redirect_ok("http://127.0.0.1:5", "https://h"));
    }
}
