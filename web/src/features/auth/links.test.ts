// Tests for carrying `?next=` between the signed-out pages.
import { describe, expect, it } from 'vitest';
import { withNext } from './links';

describe('withNext', () => {
  it('leaves the path alone without a next page', () => {
    expect(withNext('/register', null)).toBe('/register');
    expect(withNext('/register', '')).toBe('/register');
  });
  it('encodes the next page as one query value', () => {
    expect(withNext('/register', '/projects/1?x=1&y=2')).toBe('/register?next=%2Fprojects%2F1%3Fx%3D1%26y%3D2');
  });
});
