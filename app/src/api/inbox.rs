//! The reference inbox at `/inbox`: plain HTML, CSS and JavaScript modules compiled into
//! the binary (no build step, no CDN, no request leaves the page's origin). It signs in
//! with an API token and uses nothing but the public GraphQL API and its subscriptions.

use actix_web::{HttpResponse, web};

/// The page's files: (path under /inbox/, content type, content).
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../inbox/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../inbox/api.js"),
    ),
    (
        "view.js",
        "text/javascript; charset=utf-8",
        include_str!("../../inbox/view.js"),
    ),
    (
        "media.js",
        "text/javascript; charset=utf-8",
        include_str!("../../inbox/media.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../inbox/style.css"),
    ),
];

const INDEX: &str = include_str!("../../inbox/index.html");

/// Only this origin: scripts, styles, GraphQL and its WebSocket; images, audio and video
/// also from blob: URLs, which hold media files the page loaded from this origin.
const POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
                      media-src 'self' blob:; style-src 'self'; script-src 'self'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

fn page(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

async fn index() -> HttpResponse {
    page("text/html; charset=utf-8", INDEX)
}

async fn file(name: web::Path<String>) -> HttpResponse {
    match FILES.iter().find(|(path, _, _)| *path == name.as_str()) {
        Some((_, content_type, body)) => page(content_type, body),
        None => HttpResponse::NotFound().finish(),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/inbox", web::get().to(index))
        .route("/inbox/", web::get().to(index))
        .route("/inbox/{file}", web::get().to(file));
}
