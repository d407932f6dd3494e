//! Generated bindings for the one interface this app imports: `zoe:session/sessions`.
//!
//! The world is written inline so the example needs no WIT of its own; `../../wit` supplies
//! the `zoe:session` package (and its vendored dependencies). HTTP comes from spin-sdk.

wit_bindgen::generate!({
    inline: "
        package zoe:chat-app;

        world chat-app {
            import zoe:session/sessions@0.2.0;
        }
    ",
    path: "../../wit",
    world: "zoe:chat-app/chat-app",
    generate_all,
});

pub use zoe::session::sessions;
