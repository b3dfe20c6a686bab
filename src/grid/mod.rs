//! Many images from one recipe: seed neighbourhoods, X/Y plans, contact sheets. A grid is just a
//! `Vec<Recipe>`; each cell's PNG carries its own full recipe.

pub mod plan;
pub mod seeds;
pub mod sheet;
