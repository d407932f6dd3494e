mod component_only;
mod native_only;
