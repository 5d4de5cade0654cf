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
            /// Appends the columns to a row-major buffer.
            pub fn push_to(&self, out: &mut Vec<T>)
            where
                T: Clone,
            {
                self.for_each(|v| out.push(v.clone()));
            }
        }
    };
}

/// Declares a component evaluator over a columns struct that has
/// `air(name) -> (constraints, lookups)`: the one place constraints and LogUp
/// entries are handed to Stwo.
#[macro_export]
macro_rules! component_eval {
    ($(#[$m:meta])* $eval:ident, $cols:ident) => {
        $(#[$m])*
        #[derive(Clone)]
        pub struct $eval {
            pub log_size: u32,
            pub rels: $crate::relations::Relations,
        }
        impl stwo_constraint_framework::FrameworkEval for $eval {
            fn log_size(&self) -> u32 {
                self.log_size
            }
            fn max_constraint_log_degree_bound(&self) -> u32 {
                self.log_size + $crate::LOG_CONSTRAINT_EXPAND
            }
            fn evaluate<E: stwo_constraint_framework::EvalAtRow>(&self, mut eval: E) -> E {
                let cols = $cols::read(|| eval.next_trace_mask());
                // `air` may name values (Poseidon2 round states) as
                // intermediates: free for numeric evaluators, and it keeps
                // symbolic ones (expression trees for GPU code) small.
                let (constraints, lookups) = cols.air(&mut |v| eval.add_intermediate(v));
                for con in constraints {
                    eval.add_constraint(con);
                }
                $crate::relations::add_lookups(&mut eval, &self.rels, lookups);
                eval
            }
        }
    };
}
