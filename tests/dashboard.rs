//! The dashboard's page and assets as serve sends them: built in, one stylesheet with
//! the reports, nothing from outside. The pages themselves are tested in Chromium by
//! the Playwright specs of tests/e2e (tests/playwright.rs runs them).

use crate::support::*;

#[tokio::test]
async fn the_page_and_its_assets_are_built_in_and_share_the_report_look() {
    let server = start(fast_config()).await;
    let page = get(&format!("{}/", server.http_url())).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/assets/dashboard.js") && html.contains("/assets/livegames.css"));
    let css = get(&format!("{}/assets/livegames.css", server.http_url()))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(css, livegames::style::STYLE, "one stylesheet for both");
    let script = get(&format!("{}/assets/dashboard.js", server.http_url())).await;
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let text = script.text().await.unwrap();
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "no outside URLs"
    );
    server.stop().await.unwrap();
}
