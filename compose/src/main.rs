//! `zoe-compose`: the library's [`zoe_session_compose::plug`] as a command, for composing
//! your own app with zoe-session or the gate without installing `wac`.
//!
//! ```text
//! zoe-compose OUT SOCKET.wasm [PLUG.wasm=INTERFACE[,INTERFACE…]]…
//! ```

use anyhow::{Context as _, bail};
use zoe_session_compose::{Plug, plug};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, socket, plugs @ ..] = args.as_slice() else {
        bail!(
            "usage: zoe-compose OUT SOCKET.wasm [PLUG.wasm=INTERFACE[,INTERFACE...]]...\n\
             e.g.   zoe-compose app+sessions.wasm app.wasm zoe_session.wasm=zoe:session/sessions@0.2.0"
        );
    };
    let read = |path: &str| std::fs::read(path).with_context(|| format!("cannot read {path}"));
    let socket_bytes = read(socket)?;
    let mut loaded = Vec::new();
    for (index, spec) in plugs.iter().enumerate() {
        let (path, interfaces) = spec
            .split_once('=')
            .with_context(|| format!("`{spec}` must be PLUG.wasm=INTERFACE[,INTERFACE...]"))?;
        let interfaces: Vec<&str> = interfaces.split(',').collect();
        loaded.push((format!("zoe:plug{index}"), read(path)?, interfaces));
    }
    let plugs: Vec<Plug<'_>> = loaded
        .iter()
        .map(|(name, bytes, provides)| Plug {
            name,
            bytes,
            provides,
        })
        .collect();
    let composed = plug("zoe:socket", &socket_bytes, &plugs)?;
    std::fs::write(out, composed).with_context(|| format!("cannot write {out}"))?;
    println!("wrote {out}");
    Ok(())
}
