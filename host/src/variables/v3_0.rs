//! `spin:variables/variables@3.0.0`, the WASIp3-era interface (Spin >= 4.1, spin-sdk 7): the
//! same lookup as `fermyon:spin/variables@2.0.0`, with `get` an async function.

use super::VariablesView;
use crate::bindings::fermyon::spin::variables as v2_0;
use crate::bindings::p3::spin::variables::variables::{self as wit, Error};
use wasmtime::component::{Accessor, HasSelf};

impl<T: VariablesView> wit::Host for T {}

impl<U, T: VariablesView + 'static> wit::HostWithStore<U> for HasSelf<T> {
    async fn get(
        accessor: &Accessor<U, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        // An in-memory lookup: answered at once, never suspended.
        Ok(accessor.with(|mut access| {
            let ctx = access.get().variables();
            ctx.calls.variable_read();
            ctx.variables.lookup(&name).map_err(|err| match err {
                v2_0::Error::InvalidName(text) => Error::InvalidName(text),
                v2_0::Error::Undefined(text) => Error::Undefined(text),
                v2_0::Error::Provider(text) => Error::Provider(text),
                v2_0::Error::Other(text) => Error::Other(text),
            })
        }))
    }
}
