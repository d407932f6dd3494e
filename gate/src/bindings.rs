//! Generated bindings for the gate's two imports: the app's `wasi:http/incoming-handler` and
//! `zoe:session/sessions`. HTTP types are spin-sdk's, so requests pass between the gate's
//! export (spin-sdk) and its import without conversion.

wit_bindgen::generate!({
    inline: "
        package zoe:gate;

        world gate {
            import wasi:http/incoming-handler@0.2.0;
            import zoe:session/sessions@0.2.0;
        }
    ",
    path: "../wit",
    world: "zoe:gate/gate",
    with: {
        "wasi:http/types@0.2.0": spin_sdk::wit::wasi::http0_2_0::types,
        "wasi:io/error@0.2.0": ::wasi::io::error,
        "wasi:io/streams@0.2.0": ::wasi::io::streams,
        "wasi:io/poll@0.2.0": ::wasi::io::poll,
    },
    generate_all,
});

pub use zoe::session::sessions;
