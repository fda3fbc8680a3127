//! Secrets never printed (placeholder until the full module lands).

/// Userinfo and query values of URLs in `text` replaced with `***`.
pub fn url(text: &str) -> String {
    let Some(i) = text.find("://") else {
        return text.to_string();
    };
    let (head, rest) = text.split_at(i + 3);
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = match rest.split_once('@') {
        Some((_, after))
            if !rest.split('/').next().unwrap_or("").is_empty()
                && rest.split('/').next().unwrap_or("").contains('@') =>
        {
            format!("***@{after}")
        }
        _ => rest.to_string(),
    };
    let mut out = format!("{head}{rest}");
    if let Some(q) = query {
        let parts: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    out
}
