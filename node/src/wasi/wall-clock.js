// `wasi:clocks/wall-clock` (its functions are named `now` and `resolution`, as the monotonic
// clock's are, so it is a module of its own).
export { wallNow as now, wallResolution as resolution } from "./clocks.js";
