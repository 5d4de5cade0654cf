//! A macro that declares a component's columns once, in order, for both the
//! evaluator (which reads them) and the prover (which writes them).

/// Declares `struct $name<T>` with scalar and array columns and
/// `read`/`for_each` in declaration order.
#[macro_export]
macro_rules! columns {
    ($(#[$m:meta])* $name:ident { $($f:ident),* $(,)? } [ $($a:ident : $n:expr),* $(,)? ]) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name<T> {
            $(pub $f: T,)*
            $(pub $a: [T; $n],)*
        }
        impl<T> $name<T> {
            /// Number of trace columns.
            pub const N_COLUMNS: usize = 0 $(+ { let _ = stringify!($f); 1 })* $(+ $n)*;
            /// Reads the columns in declaration order.
            pub fn read(mut next: impl FnMut() -> T) -> Self {
                $(let $f = next();)*
                $(let $a = core::array::from_fn(|_| next());)*
                Self { $($f,)* $($a,)* }
            }
            /// Visits the columns in declaration order.
            pub fn for_each(&self, mut f: impl FnMut(&T)) {
                $(f(&self.$f);)*
                $(for x in &self.$a { f(x) })*
            }
        }
    };
}
